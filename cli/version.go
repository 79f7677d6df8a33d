package cli

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Version and Commit are set at build time (Makefile build:
// -ldflags "-X github.com/mynet/mynet/cli.Version=... -X ...Commit=...");
// without them, version reads the module's VCS build info.
var (
	Version string
	Commit  string
)

// versionInfo is what `mynet version` prints: the ldflags values, else
// the build info's module version and vcs.revision (with -dirty).
func versionInfo(bi *debug.BuildInfo, ok bool) (version, commit string) {
	version, commit = Version, Commit
	if !ok {
		return orUnknown(version), orUnknown(commit)
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if commit == "" && rev != "" {
		commit = rev + dirty
	}
	if version == "" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		} else if rev != "" {
			version = rev + dirty
		}
	}
	return orUnknown(version), orUnknown(commit)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func versionMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "--help" || args[0] == "-h" || args[0] == "-help" {
			fmt.Fprintln(stdout, "usage: mynet version\n\nPrints mynet's build version and commit.")
			return 0
		}
		fmt.Fprintln(stderr, "usage: mynet version")
		return 2
	}
	bi, ok := debug.ReadBuildInfo()
	v, c := versionInfo(bi, ok)
	fmt.Fprintf(stdout, "mynet %s (commit %s)\n", v, c)
	return 0
}
