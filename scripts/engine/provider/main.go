// Command pulumi-resource-postgresql is the bridged Pulumi PostgreSQL provider,
// built from github.com/pulumi/pulumi-postgresql/provider/v3 at the commit of the
// pinned pulumi-postgresql release.
//
// The upstream main embeds schema-embed.json, a generated, git-ignored file that
// is not part of the module zip. build.sh writes it next to a staged copy of
// this file from the committed cmd/pulumi-resource-postgresql/schema.json with
// the "version" field set, which is what the upstream generator does.
package main

import (
	_ "embed"

	postgresql "github.com/pulumi/pulumi-postgresql/provider/v3"
	"github.com/pulumi/pulumi-postgresql/provider/v3/pkg/version"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
)

//go:embed schema-embed.json
var pulumiSchema []byte

func main() {
	tfbridge.Main("postgresql", version.Version, postgresql.Provider(), pulumiSchema)
}
