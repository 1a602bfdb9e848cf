#!/usr/bin/env bash
# Build the real Pulumi engine (CLI, Python language host, PostgreSQL provider)
# from Go modules, pinned to the versions in requirements.txt, into a per-user
# cache, and point <repo>/.tools/bin at it.  See scripts/engine/README.md.
#
#   scripts/engine/build.sh            build what is missing, then link .tools/bin
#
# Environment knobs (all optional):
#   ENGINE_CACHE_ROOT   default ${XDG_CACHE_HOME:-$HOME/.cache}/habit-tracker-db/engine
#   ENGINE_BUILD_CLI=1  build the CLI even when a `pulumi` is on PATH
#   ENGINE_PROVIDER     auto (default: try, warn on failure) | required (fail) | skip
#   ENGINE_RETRY_PROVIDER=1  retry a provider build that failed before for this version
set -euo pipefail

say()  { printf '[engine] %s\n' "$*" >&2; }
die()  { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }
# run CMD...: print it, run it, and on failure print the exact command and exit.
run() {
    say "\$ $*"
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '[engine] ERROR: command failed (exit %s):\n[engine]   (cd %q && %s)\n' \
            "$rc" "$PWD" "$(printf '%q ' "$@")" >&2
        exit "$rc"
    fi
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
REQ="$REPO/requirements.txt"

# ---------------------------------------------------------------- versions
pin() { # pin NAME -> version from "NAME==X.Y.Z" in requirements.txt
    local v
    v="$(sed -nE "s/^[[:space:]]*$1[[:space:]]*==[[:space:]]*([0-9][0-9A-Za-z.+-]*).*/\1/p" "$REQ" | head -n1)"
    [ -n "$v" ] || die "no '$1==<version>' line in $REQ"
    printf '%s' "$v"
}
PULUMI_VER="$(pin pulumi)"
PG_VER="$(pin pulumi-postgresql)"

# Commits of the pinned pulumi-postgresql release and of its upstream submodule.
# Keyed by provider version; add a line when requirements.txt moves.
case "$PG_VER" in
    3.18.0) PG_COMMIT=b57d264d8aee0707e2c0135720c8e2115a9970d4
            PG_PSEUDO=v3.0.0-20260716141723-b57d264d8aee   # commit time 2026-07-16T14:17:23Z
            PG_UPSTREAM_COMMIT=ff936b9548c1076f498523a2bd116915ff977142
            PG_UPSTREAM_PSEUDO="" ;;                       # commit time not known here
    *) PG_COMMIT=""; PG_PSEUDO=""; PG_UPSTREAM_COMMIT=""; PG_UPSTREAM_PSEUDO="" ;;
esac

# The Python language host.  From sdk v3.80.0 on, it lives in its own module
# (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), which the
# module proxy available here does not serve at any version; sdk/v3@v3.79.0 is
# the last release whose module still contains it.  See README.md.
PYHOST_SDK_VER=v3.79.0

# Bump when a change to this script changes what ends up in bin/ (forces a rebuild).
LAYOUT=1

CACHE_ROOT="${ENGINE_CACHE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/habit-tracker-db/engine}"
DEST="$CACHE_ROOT/${PULUMI_VER}-pg${PG_VER}"
BIN="$DEST/bin"
STAMP="$DEST/.complete"
BLOCKED="$DEST/provider.blocked"
LINK="$REPO/.tools/bin"

link_tools() {
    mkdir -p "$REPO/.tools"
    if [ "$(readlink "$LINK" 2>/dev/null)" != "$BIN" ]; then
        rm -rf "$LINK"
        ln -s "$BIN" "$LINK"
    fi
    say "linked $LINK -> $BIN"
}

# ---------------------------------------------------------------- ambient CLI
# A `pulumi` on PATH that is not one of ours (normal workstation) is used as is.
AMBIENT=""
if [ "${ENGINE_BUILD_CLI:-0}" != 1 ]; then
    IFS=: read -r -a _path <<<"${PATH:-}"
    for d in "${_path[@]}"; do
        [ -n "$d" ] && [ -x "$d/pulumi" ] || continue
        real="$(readlink -f "$d/pulumi")"
        case "$real" in "$CACHE_ROOT"/*|"$REPO"/.tools/*) continue ;; esac
        AMBIENT="$real"; break
    done
fi

# The official distribution bundles the Python host and its helpers next to
# `pulumi`; copies of ours in .tools/bin would win the $PATH lookup, so use those.
PYHOST_BUNDLED=""
if [ -n "$AMBIENT" ] && [ -x "$(dirname "$AMBIENT")/pulumi-language-python" ]; then
    PYHOST_BUNDLED="$(dirname "$AMBIENT")"
fi

# Everything that decides what the cache holds; a change forces a rebuild.
inputs_key() {
    {
        echo "layout=$LAYOUT pulumi=$PULUMI_VER pg=$PG_VER pyhost=$PYHOST_SDK_VER cli=${AMBIENT:-built} pyhost_bundled=${PYHOST_BUNDLED:-no}"
        cat "$HERE"/cli/go.mod "$HERE"/cli/go.sum "$HERE"/python-host/go.mod \
            "$HERE"/python-host/go.sum "$HERE"/provider/go.mod "$HERE"/provider/main.go 2>/dev/null
    } | sha256sum | cut -d' ' -f1
}
KEY="$(inputs_key)"

# ---------------------------------------------------------------- fast path
have_all() {
    local f
    [ -n "$AMBIENT" ] || [ -x "$BIN/pulumi" ] || return 1
    [ -n "$PYHOST_BUNDLED" ] && return 0
    for f in pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
        [ -x "$BIN/$f" ] || return 1
    done
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && have_all \
   && { [ -x "$BIN/pulumi-resource-postgresql" ] || [ "${ENGINE_PROVIDER:-auto}" = skip ] || { [ -f "$BLOCKED" ] && [ "${ENGINE_RETRY_PROVIDER:-0}" != 1 ] && [ "${ENGINE_PROVIDER:-auto}" != required ]; }; }; then
    say "engine pulumi $PULUMI_VER / postgresql $PG_VER already built in $BIN"
    [ -n "$AMBIENT" ] && say "using pulumi from PATH: $AMBIENT"
    [ -f "$BLOCKED" ] && [ ! -x "$BIN/pulumi-resource-postgresql" ] && \
        say "WARNING: pulumi-resource-postgresql is not available (see $BLOCKED)"
    link_tools
    exit 0
fi

# ---------------------------------------------------------------- toolchain
command -v go >/dev/null || die "go is not on PATH (need Go >= 1.25.11 for pulumi $PULUMI_VER)"
say "using $(go version) ; GOCACHE=$(go env GOCACHE) ; GOMODCACHE=$(go env GOMODCACHE)"
mkdir -p "$BIN"
T0=$SECONDS

# build_in MODULE_DIR OUT_NAME PKG LDFLAGS_X... : go build into $BIN atomically
build_in() {
    local dir="$1" out="$2" pkg="$3"; shift 3
    local ld="-s -w" x
    for x in "$@"; do ld="$ld -X $x"; done
    local t=$SECONDS
    say "building $out ($pkg)"
    (cd "$dir" && run go build -trimpath -ldflags "$ld" -o "$BIN/.$out.tmp" "$pkg")
    mv -f "$BIN/.$out.tmp" "$BIN/$out"
    say "built $BIN/$out in $((SECONDS - t))s"
}

modcache_dir() { # modcache_dir MODULE@VERSION -> extracted module dir
    local dir
    dir="$(cd "$HERE/cli" && go mod download -json "$1" | sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
    [ -n "$dir" ] && [ -d "$dir" ] || die "could not download $1 (go mod download -json $1)"
    printf '%s' "$dir"
}

# ---------------------------------------------------------------- 1. CLI
if [ -n "$AMBIENT" ]; then
    say "pulumi found on PATH ($AMBIENT: $("$AMBIENT" version 2>/dev/null || echo '?')); not building the CLI"
    case "$("$AMBIENT" version 2>/dev/null)" in
        "v$PULUMI_VER") ;;
        *) say "WARNING: it is not v$PULUMI_VER as pinned in requirements.txt" ;;
    esac
    rm -f "$BIN/pulumi"
else
    build_in "$HERE/cli" pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VER"
    got="$("$BIN/pulumi" version)"
    [ "$got" = "v$PULUMI_VER" ] || die "$BIN/pulumi version printed '$got', expected v$PULUMI_VER"
fi

# ---------------------------------------------------------------- 2. Python language host
# Stamped with the version of the sdk module it is built from, so `pulumi about`
# shows the truth.
if [ -n "$PYHOST_BUNDLED" ]; then
    say "using the Python language host bundled in $PYHOST_BUNDLED; not building it"
    rm -f "$BIN/pulumi-language-python" "$BIN/pulumi-language-python-exec" \
          "$BIN/pulumi-resource-pulumi-python" "$BIN/pulumi-analyzer-policy-python"
else
build_in "$HERE/python-host" pulumi-language-python \
    github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
    "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PYHOST_SDK_VER"

# ---------------------------------------------------------------- 3. Python helpers
# The executor and the dynamic-provider launcher come from the pinned sdk, so
# they match the pulumi Python SDK in the virtualenv.
SDK_DIR="$(modcache_dir "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VER")"
for f in python/cmd/pulumi-language-python-exec python/dist/pulumi-resource-pulumi-python \
         python/dist/pulumi-analyzer-policy-python; do
    [ -f "$SDK_DIR/$f" ] || { [ "${f##*/}" = pulumi-analyzer-policy-python ] && continue; die "missing $SDK_DIR/$f"; }
    install -m 0755 "$SDK_DIR/$f" "$BIN/${f##*/}"
    say "installed $BIN/${f##*/} (from sdk/v3@v$PULUMI_VER/$f)"
done
fi

# ---------------------------------------------------------------- 4. PostgreSQL provider
provider_fail() { # record why, then fail or warn depending on ENGINE_PROVIDER
    { echo "pulumi-resource-postgresql $PG_VER could not be built on $(date -u +%FT%TZ):"; cat; } > "$BLOCKED"
    sed 's/^/[engine]   /' "$BLOCKED" >&2
    if [ "${ENGINE_PROVIDER:-auto}" = required ]; then die "provider build failed (ENGINE_PROVIDER=required)"; fi
    say "WARNING: continuing without pulumi-resource-postgresql (ENGINE_PROVIDER=auto); details in $BLOCKED"
}
resolve() { # resolve STAGE MODULE COMMIT [PSEUDO...] -> first version the proxy answers
    local stage="$1" mod="$2" commit="$3" q out; shift 3
    : > "$stage/resolve.log"
    for q in "${commit:0:12}" "$@"; do
        say "\$ go list -m -f '{{.Version}}' $mod@$q"
        if out="$(cd "$stage" && go list -m -f '{{.Version}}' "$mod@$q" 2>&1)"; then
            printf '%s' "$out"; return 0
        fi
        printf '$ (cd %s && go list -m -f {{.Version}} %s@%s)\n%s\n' "$stage" "$mod" "$q" "$out" >> "$stage/resolve.log"
    done
    return 1
}
build_provider() {
    [ -n "$PG_COMMIT" ] || { echo "no commit known for pulumi-postgresql $PG_VER: add it to the case in build.sh" | provider_fail; return; }
    local stage="$DEST/src/provider" out rc
    rm -rf "$stage"; mkdir -p "$stage"
    cp "$HERE/provider/go.mod" "$HERE/provider/main.go" "$stage/"
    [ -f "$HERE/provider/go.sum" ] && cp "$HERE/provider/go.sum" "$stage/"
    # Resolve both commits to canonical versions through the module proxy: first
    # by commit query, then by the pseudo-versions computed from the commit
    # times (a filtering proxy may answer only canonical versions).
    local v1 v2
    v1="$(resolve "$stage" github.com/pulumi/pulumi-postgresql/provider/v3 "$PG_COMMIT" $PG_PSEUDO)" \
        || { provider_fail < "$stage/resolve.log"; return; }
    v2="$(resolve "$stage" github.com/terraform-providers/terraform-provider-postgresql "$PG_UPSTREAM_COMMIT" $PG_UPSTREAM_PSEUDO)" \
        || { provider_fail < "$stage/resolve.log"; return; }
    (cd "$stage" \
        && run go mod edit -require="github.com/pulumi/pulumi-postgresql/provider/v3@$v1" \
             -replace="github.com/cyrilgdn/terraform-provider-postgresql=github.com/terraform-providers/terraform-provider-postgresql@$v2" \
        && run go mod tidy)
    local pdir
    pdir="$(cd "$stage" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-postgresql/provider/v3)"
    python3 - "$pdir/cmd/pulumi-resource-postgresql/schema.json" "$stage/schema-embed.json" "$PG_VER" <<'PY'
import json, sys
src, dst, ver = sys.argv[1:]
schema = json.load(open(src))
schema["version"] = ver
json.dump(schema, open(dst, "w"))
PY
    build_in "$stage" pulumi-resource-postgresql . \
        "github.com/pulumi/pulumi-postgresql/provider/v3/pkg/version.Version=v$PG_VER"
    rm -f "$BLOCKED"
}
case "${ENGINE_PROVIDER:-auto}" in
    skip) say "ENGINE_PROVIDER=skip: not building pulumi-resource-postgresql" ;;
    *)    rm -f "$BLOCKED"; build_provider ;;
esac

# ---------------------------------------------------------------- done
echo "$KEY" > "$STAMP"
link_tools
say "done in $((SECONDS - T0))s; binaries:"
ls -l "$BIN" | sed 's/^/[engine]   /' >&2
