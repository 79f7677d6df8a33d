package plugin

import (
	"context"

	"github.com/mynet/mynet/driver"
)

// PrunePath is mynet's private route for `mynet prune`; the engine never
// calls it. Like the others it answers once start-up restore is done.
const PrunePath = "/Mynet.Prune"

// pruner is the driver side of PrunePath; *driver.Driver fits.
type pruner interface {
	Prune(*driver.PruneRequest) (*driver.PruneAnswer, error)
}

// handlePrune registers PrunePath with h when the driver serves it.
func handlePrune(h func(string, func([]byte) (any, error)), d any) {
	if p, ok := d.(pruner); ok {
		h(PrunePath, call(p.Prune))
	}
}

// Prune asks mynet to remove the records the engine no longer has.
func (c *Client) Prune(ctx context.Context, req *driver.PruneRequest) (*driver.PruneAnswer, error) {
	ans := &driver.PruneAnswer{}
	return ans, c.do(ctx, PrunePath, req, ans)
}
