package firewall

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnableForwarding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ip_forward")
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ipt := newIPTables(testLog(), newFakeTables(), BackendNFTables, true, path)
	for i := range 2 {
		if err := ipt.EnableForwarding(); err != nil {
			t.Fatalf("EnableForwarding #%d: %v", i+1, err)
		}
		if got, _ := os.ReadFile(path); string(got) != "1\n" {
			t.Fatalf("after EnableForwarding #%d: %q, want \"1\\n\"", i+1, got)
		}
	}
}

func TestEnableSysctlReportsChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ip_forward")
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		changed, err := enableSysctl(path)
		if err != nil {
			t.Fatalf("enableSysctl #%d: %v", i+1, err)
		}
		if changed != want {
			t.Errorf("enableSysctl #%d changed = %v, want %v", i+1, changed, want)
		}
	}
}

// An already enabled sysctl is not written: on a read-only /proc/sys (a
// container without the right to change it) that is the difference between
// working and failing.
func TestEnableSysctlAlreadyOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ip_forward")
	if err := os.WriteFile(path, []byte("1\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if changed, err := enableSysctl(path); err != nil || changed {
		t.Fatalf("enableSysctl = %v, %v; want false, nil", changed, err)
	}
}

func TestEnableForwardingMissingFile(t *testing.T) {
	ipt := newIPTables(testLog(), newFakeTables(), BackendNFTables, true, filepath.Join(t.TempDir(), "absent"))
	if err := ipt.EnableForwarding(); err == nil {
		t.Fatal("EnableForwarding on a missing sysctl succeeded")
	}
}
