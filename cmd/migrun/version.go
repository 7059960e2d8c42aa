package main

import (
	"runtime/debug"
)

// buildInfo is what the Go toolchain stamps into the binary.
type buildInfo struct {
	revision string // vcs.revision, "" when not built from a checkout
	modified bool   // vcs.modified: the checkout had uncommitted changes
	module   string // the main module's version, "(devel)" in a checkout
}

func readBuildInfo() buildInfo {
	var b buildInfo
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.module = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// versionString is the version -ldflags stamped (make build), else what
// the toolchain knows: a module version (go install ...@v1.2.3) or the
// commit a plain go build was made from, so that a report names the code.
func versionString(stamped string, b buildInfo) string {
	if stamped != "dev" {
		return stamped
	}
	if b.module != "" && b.module != "(devel)" {
		return b.module
	}
	if b.revision == "" {
		return "dev"
	}
	v := "dev-" + b.revision[:min(12, len(b.revision))]
	if b.modified {
		v += "-modified"
	}
	return v
}
