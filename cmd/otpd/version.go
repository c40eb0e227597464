package main

import (
	"fmt"
	"runtime/debug"
)

// version describes this build: the module's version (a tagged release
// installed with go install), else the commit it was built from, with
// "+modified" when the work tree had uncommitted changes, and the Go that
// built it.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	v := info.Main.Version
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if (v == "" || v == "(devel)") && revision != "" {
		v = revision[:min(len(revision), 12)] + modified
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("%s, %s", v, info.GoVersion)
}
