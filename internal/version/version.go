// Package version says which build of rmbd is running: the module's
// version and the VCS revision it was built from, as the Go toolchain
// records them, or what -ldflags set.
package version

import (
	"runtime/debug"
	"sync"
)

// Version and Revision may be set at link time:
// -ldflags "-X github.com/rmbd/rmbd/internal/version.Version=v1.2.3".
var (
	Version  = ""
	Revision = ""
)

var once = sync.OnceValue(func() string {
	v, rev, dirty := Version, Revision, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		if dirty {
			rev += "+dirty"
		}
		return v + " (" + rev + ")"
	}
	return v
})

// String returns e.g. "v1.2.3 (abc123def456)" or "devel (abc123def456+dirty)".
func String() string { return once() }
