// Package buildinfo holds what build.sh stamps into the binary.
package buildinfo

// Version is set at build time with -ldflags "-X .../buildinfo.Version=..."; "dev" otherwise.
var Version = "dev"
