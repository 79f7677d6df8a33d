//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
	"golang.org/x/sys/unix"
)

// The managed plugin shares the host's xtables lock (config.json's
// xtables-lock mount): its iptables-legacy waits while another program,
// such as dockerd's iptables, holds /run/xtables.lock. Subnet 10.197.

const hostXtablesLock = "/run/xtables.lock"

// TestManagedXtablesLock: while the test holds the host's lock, the
// plugin's rule write for a new network waits on that very file, and the
// network is created once the lock is released.
func TestManagedXtablesLock(t *testing.T) {
	harness.WithManagedDriver(t)
	id := harness.ManagedID(t)
	t.Cleanup(func() { setManagedEnv(t, "MYNET_IPTABLES=auto") })
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())
	setManagedEnv(t, "MYNET_IPTABLES=legacy")
	harness.ManagedSettled(t, id, off, "mynet serving")

	const net, subnet = "mynet-e2e-mlock", "10.197.0.0/24"
	p := harness.Shared().Plugin()
	t.Cleanup(func() { harness.CleanupCmd(t, "network", "rm", net) })
	release := holdXtablesLock(t)
	created := make(chan error, 1)
	go func() {
		_, err := harness.DockerErr("network", "create", "-d", p, "--ipam-driver", p, "--subnet", subnet, net)
		created <- err
	}()
	waiter, err := waitLockWaiter(id, created)
	if err != nil {
		release()
		t.Fatal(err)
	}
	t.Logf("plugin process %s waits for the host's %s", waiter, hostXtablesLock)
	if legacy := harness.InEngine(t, "iptables-legacy-save"); strings.Contains(legacy, subnet) {
		t.Errorf("rules for %s written while the host held the xtables lock:\n%s", subnet, legacy)
	}
	release()
	select {
	case err := <-created:
		if err != nil {
			t.Fatalf("network create after the lock was released: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("network create still running 2 min after the lock was released")
	}
	harness.MustContain(t, "legacy tables", harness.InEngine(t, "iptables-legacy-save"), "-A MYNET-POSTROUTING -s "+subnet)
}

// holdXtablesLock takes the host's xtables lock as iptables does (flock,
// exclusive) and returns the function that releases it. It waits its turn
// behind other holders, which hold it for milliseconds.
func holdXtablesLock(t *testing.T) (release func()) {
	t.Helper()
	f, err := os.OpenFile(hostXtablesLock, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("opening %s: %v", hostXtablesLock, err)
	}
	err = harness.WaitFor(time.Minute, 50*time.Millisecond, func() error {
		return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	})
	if err != nil {
		_ = f.Close()
		t.Fatalf("taking %s: %v", hostXtablesLock, err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = f.Close() // closing the only descriptor drops the lock
		}
	}
	t.Cleanup(release)
	return release
}

// waitLockWaiter waits until a process of the managed plugin with id
// blocks on the host's xtables lock (a "->" line of /proc/locks on its
// inode), and returns its pid and command. It fails if created reports
// first: the write went through without the host's lock.
func waitLockWaiter(id string, created <-chan error) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(hostXtablesLock, &st); err != nil {
		return "", err
	}
	inode := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-created:
			return "", fmt.Errorf("network create returned (%v) while the host held %s: the plugin's iptables did not take the host's lock", err, hostXtablesLock)
		default:
		}
		if pid := pluginLockWaiter(id, inode); pid != "" {
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			return pid + " (" + strings.TrimSpace(string(comm)) + ")", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no process of plugin %s waited on %s (%s) within a minute:\n%s", harness.Short(id), hostXtablesLock, inode, readLocks())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pluginLockWaiter returns the pid of a process in the plugin's cgroup
// that /proc/locks shows blocked on the lock file inode, "" if none.
func pluginLockWaiter(id, inode string) string {
	for _, line := range strings.Split(readLocks(), "\n") {
		f := strings.Fields(line)
		// "3: -> FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"
		if len(f) < 8 || f[1] != "->" || f[2] != "FLOCK" || f[6] != inode {
			continue
		}
		if _, err := strconv.Atoi(f[5]); err != nil {
			continue
		}
		if cg, err := os.ReadFile("/proc/" + f[5] + "/cgroup"); err == nil && strings.Contains(string(cg), id) {
			return f[5]
		}
	}
	return ""
}

func readLocks() string {
	b, _ := os.ReadFile("/proc/locks")
	return string(b)
}

// TestManagedXtablesLockMissing: the engine does not create a missing bind
// source for a plugin; enabling fails and names it. That is why make
// install creates the host's lock file (and a tmpfiles entry for boot).
func TestManagedXtablesLockMissing(t *testing.T) {
	harness.UseManaged(t)
	missing := filepath.Join(harness.Shared().Layout.WorkDir, "no-such-xtables.lock")
	t.Cleanup(func() {
		_, _ = harness.DockerErr("plugin", "disable", "-f", harness.ManagedName)
		harness.Docker(t, "plugin", "set", harness.ManagedName, "xtables-lock.source="+hostXtablesLock)
		ensureManagedEnabled(t)
	})
	harness.Docker(t, "plugin", "disable", harness.ManagedName)
	harness.Docker(t, "plugin", "set", harness.ManagedName, "xtables-lock.source="+missing)
	out, err := harness.DockerErr("plugin", "enable", harness.ManagedName)
	if err == nil {
		t.Fatalf("plugin enabled with its xtables-lock source %s missing (%s)", missing, out)
	}
	t.Logf("enable refused as expected: %v", err)
	harness.MustContain(t, "enable error", err.Error(), missing)
	if _, err := os.Lstat(missing); err == nil {
		t.Errorf("the engine created %s", missing)
	}
}
