//go:build linux

// Package nstest runs kernel tests inside a fresh, throwaway network
// namespace so they never touch the host's links, addresses or firewall.
package nstest

import (
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// iptablesMu serialises tests: the iptables binaries take a global xtables
// lock and some kernels share conntrack/nf state across namespaces.
var iptablesMu sync.Mutex

// RequireRoot skips the test with a clear message unless run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (network namespaces, netlink, iptables); run `sudo go test` or `make test` as root")
	}
}

// Run locks the goroutine to its OS thread, moves that thread into a new
// network namespace with lo up, and runs fn there with a netlink handle
// bound to it. The thread returns to the original namespace afterwards, and
// the namespace disappears with its last reference, taking every link,
// address and rule the test created with it.
//
// Child processes started from fn (iptables) inherit the namespace because
// Go forks on the calling thread.
func Run(t *testing.T, fn func(h *netlink.Handle)) {
	t.Helper()
	RequireRoot(t)
	iptablesMu.Lock()
	defer iptablesMu.Unlock()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New() // also switches this thread into it
	if err != nil {
		_ = orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is stuck in the test namespace; leave it locked so
			// the runtime discards it instead of reusing it.
			t.Errorf("restore netns: %v", err)
			return
		}
		_ = ns.Close()
		_ = orig.Close()
		runtime.UnlockOSThread()
	}()

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in test netns: %v", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("lo: %v", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	fn(h)
}
