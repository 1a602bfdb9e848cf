//go:build tools

// Package tools pins the Python language host main package. sdk/v3@v3.79.0 is
// the last sdk/v3 release that still ships python/cmd/pulumi-language-python
// inside the sdk module; see ../README.md for why. Built by ../build.sh.
package tools

import (
	_ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
)
