package driver

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/internal/nldump"
)

// interrupt makes the next n link dumps come back interrupted.
func interrupt(k *fake.Kernel, n int) {
	for i := 1; i <= n; i++ {
		k.FailOn("LinkList", i, netlink.ErrDumpInterrupted)
	}
}

// A link dump the kernel interrupts is tried again, at start-up too: a
// start while containers come and go must still reconcile.
func TestLinkDumpsRetried(t *testing.T) {
	k := fake.NewKernel()
	d, err := New(k, newFakeFirewall(), nil, newMemStore(), quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	// A bridge of a network mynet no longer records, for reconcile to remove.
	orphan := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgePrefix + "0123456ab"}}
	if err := k.LinkAdd(orphan); err != nil {
		t.Fatal(err)
	}
	if err := k.LinkSetAlias(orphan, ownerAlias("", "0123456ab")); err != nil {
		t.Fatal(err)
	}
	interrupt(k, nldump.Attempts-1)
	if err := d.Restore(); err != nil {
		t.Fatalf("Restore with interrupted dumps: %v", err)
	}
	if _, err := k.LinkByName(bridgePrefix + "0123456ab"); err == nil {
		t.Error("reconcile did not run: the orphaned bridge is left")
	}
	interrupt(k, nldump.Attempts-1)
	if _, err := d.hostLinks(); err != nil {
		t.Errorf("hostLinks with interrupted dumps: %v", err)
	}
}
