package cli

import (
	"bytes"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

// help lists every subcommand and the daemon's flags; every subcommand's
// --help exits 0.
func TestHelp(t *testing.T) {
	DaemonUsage = func(w io.Writer) { io.WriteString(w, "DAEMON-FLAGS\n") }
	var out, errOut bytes.Buffer
	if rc := helpMain(nil, &out, &errOut); rc != 0 {
		t.Fatalf("help: %d, %s", rc, errOut.String())
	}
	for name := range commands {
		if !strings.Contains(out.String(), "  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, out.String())
		}
		if !strings.Contains(out.String(), "DAEMON-FLAGS") {
			t.Errorf("help does not show the daemon's flags:\n%s", out.String())
		}
		run, _ := Lookup(name)
		var o, e bytes.Buffer
		if rc := run([]string{"--help"}, &o, &e); rc != 0 {
			t.Errorf("mynet %s --help: exit %d, %s", name, rc, e.String())
		}
	}
}

func TestVersion(t *testing.T) {
	Version, Commit = "", ""
	bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	if v, c := versionInfo(bi, true); v != "0123456789ab-dirty" || c != "0123456789ab-dirty" {
		t.Errorf("from build info: %q %q", v, c)
	}
	Version, Commit = "v1.2-3-gabc", "abc"
	defer func() { Version, Commit = "", "" }()
	if v, c := versionInfo(bi, true); v != "v1.2-3-gabc" || c != "abc" {
		t.Errorf("from ldflags: %q %q", v, c)
	}
	var out bytes.Buffer
	if rc := versionMain(nil, &out, &out); rc != 0 || !strings.Contains(out.String(), "v1.2-3-gabc") {
		t.Errorf("version: %d %q", rc, out.String())
	}
}
