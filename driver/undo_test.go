package driver

import (
	"errors"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/mynet/mynet/internal/fake"
)

// An undo that fails is logged at warn with what it left, and the error
// returned is the one that made the undo run; reconcile removes the
// leftover at the next start.
func TestUndoFailureIsLogged(t *testing.T) {
	k := fake.NewKernel()
	logger, hook := test.NewNullLogger()
	// An instance, so that the bridge left without its alias is still
	// known as ours by its link group.
	inst := Instance{Name: "mynet", UUID: "1a2b3c4d-0000-4000-8000-000000000001"}
	d, err := New(k, newFakeFirewall(), nil, newMemStore(), logrus.NewEntry(logger), WithInstance(inst), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	k.FailOn("LinkSetAlias", 1, errInjected)
	k.FailOn("LinkDel", 1, syscall.EBUSY)
	err = d.CreateNetwork(createReq(nil))
	if !errors.Is(err, errInjected) || errors.Is(err, syscall.EBUSY) {
		t.Fatalf("CreateNetwork = %v, want the alias failure and not the undo's", err)
	}
	var undo *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && e.Data["bridge"] == testBridge {
			undo = e
		}
	}
	if undo == nil || !errors.Is(undo.Data[logrus.ErrorKey].(error), syscall.EBUSY) {
		t.Fatalf("no warning with the bridge and the undo's error; logged %v", hook.AllEntries())
	}
	if err := d.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.LinkByName(testBridge); err == nil {
		t.Error("reconcile left the bridge the undo could not delete")
	}
}
