package main

import "runtime/debug"

// version describes this build: the module's version as the go command
// stamped it (a release tag, or a pseudo-version naming the commit, with
// "+dirty" for uncommitted changes; "(devel)" when built without version
// control information), and the Go that built it.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	return info.Main.Version + ", " + info.GoVersion
}
