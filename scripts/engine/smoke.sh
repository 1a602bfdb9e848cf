#!/usr/bin/env bash
# Smoke test for the engine in <repo>/.tools/bin: in a scratch folder with a local
# file backend, runs `pulumi up` and `pulumi destroy` on a tiny Python program
# with one pulumi.dynamic resource. If pulumi-resource-postgresql exists and
# PG_SMOKE_PORT is set (port of a local PostgreSQL server, trust auth, user
# postgres), it also creates one postgresql.Role.
#   scripts/engine/smoke.sh        (run scripts/engine/build.sh first)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
say() { printf '[smoke] %s\n' "$*" >&2; }

[ -x "$REPO/.tools/bin/pulumi-language-python" ] || [ -x "$REPO/.tools/bin/pulumi" ] \
    || { say "no engine in $REPO/.tools/bin: run scripts/engine/build.sh"; exit 1; }
[ -x "$REPO/.venv/bin/python" ] || { say "no $REPO/.venv"; exit 1; }

WORK="$(mktemp -d /tmp/engine-smoke.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/prog" "$WORK/state" "$WORK/home"

export PATH="$REPO/.tools/bin:$PATH"
export PULUMI_HOME="$WORK/home"
export PULUMI_BACKEND_URL="file://$WORK/state"
export PULUMI_CONFIG_PASSPHRASE=smoke
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_PYTHON_CMD="$REPO/.venv/bin/python"

WITH_PG=0
if [ -n "${PG_SMOKE_PORT:-}" ] && command -v pulumi-resource-postgresql >/dev/null; then WITH_PG=1; fi

cat > "$WORK/prog/Pulumi.yaml" <<EOF
name: engine-smoke
runtime:
  name: python
  options:
    virtualenv: $REPO/.venv
EOF
cat > "$WORK/prog/__main__.py" <<EOF
import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class Upper(ResourceProvider):
    def create(self, props):
        return CreateResult(id_="upper-" + props["text"], outs={**props, "upper": props["text"].upper()})

    def delete(self, id, props):
        pass


class UpperText(Resource):
    upper: pulumi.Output[str]

    def __init__(self, name, text, opts=None):
        super().__init__(Upper(), name, {"text": text, "upper": None}, opts)


pulumi.export("upper", UpperText("smoke", "engine ok").upper)

if $WITH_PG:
    import pulumi_postgresql as pg
    prov = pg.Provider("pg", host="127.0.0.1", port=${PG_SMOKE_PORT:-0}, username="postgres",
                       sslmode="disable", superuser=True)
    role = pg.Role("smoke_role", name="engine_smoke_role", login=False,
                   opts=pulumi.ResourceOptions(provider=prov))
    pulumi.export("role", role.name)
EOF

cd "$WORK/prog"
say "pulumi $(pulumi version); postgresql resource: $([ $WITH_PG = 1 ] && echo yes || echo no)"
pulumi stack init smoke --secrets-provider passphrase >/dev/null
pulumi up --yes --skip-preview >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; say "pulumi up FAILED"; exit 1; }
out="$(pulumi stack output upper)"
[ "$out" = "ENGINE OK" ] || { cat "$WORK/up.log"; say "unexpected output: $out"; exit 1; }
say "pulumi up: ok (dynamic provider output '$out')"
if [ $WITH_PG = 1 ]; then
    [ "$(pulumi stack output role)" = engine_smoke_role ] || { say "postgresql role missing"; exit 1; }
    say "postgresql.Role: ok"
fi
pulumi destroy --yes --skip-preview >"$WORK/destroy.log" 2>&1 || { cat "$WORK/destroy.log"; say "pulumi destroy FAILED"; exit 1; }
say "pulumi destroy: ok"
