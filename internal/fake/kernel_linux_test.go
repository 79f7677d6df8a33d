//go:build linux

package fake

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// The fake answers every call of the script as a real namespace does.
func TestKernelFailsLikeTheKernel(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		want, got := script(h), script(NewKernel())
		for i := range max(len(want), len(got)) {
			w, g := at(want, i), at(got, i)
			if w != g {
				t.Errorf("step %d: kernel %q, fake %q", i, w, g)
			}
		}
		if testing.Verbose() {
			for _, s := range want {
				t.Log(s)
			}
		}
	})
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}
