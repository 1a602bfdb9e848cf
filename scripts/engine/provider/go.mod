module habit-tracker-db/engine/provider

go 1.26.0

// Mirrors github.com/pulumi/pulumi-postgresql/provider/v3's go.mod at the
// v3.18.0 commit (b57d264d8aee). build.sh stages a copy of this module and adds,
// resolved by commit through the Go module proxy:
//   require github.com/pulumi/pulumi-postgresql/provider/v3 <pseudo-version of b57d264d8aee>
//   replace github.com/cyrilgdn/terraform-provider-postgresql =>
//           github.com/terraform-providers/terraform-provider-postgresql <pseudo-version of ff936b9548c1>
// (upstream's own go.mod declares the terraform-providers path; pulumi builds it
// from a git submodule, ../upstream, which no module zip contains).
replace github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 v2.0.0-20260318212141-5525259d096b

require (
	github.com/pulumi/pulumi-terraform-bridge/v3 v3.134.0
	github.com/pulumi/pulumi/sdk/v3 v3.251.0
)
