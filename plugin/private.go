package plugin

import (
	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/api"
)

// The driver's side of mynet's private routes (package api), one
// interface per route group; *driver.Driver implements them all. NewHandler
// registers a group's routes when the driver implements its interface.
type (
	// PortsQuerier serves api.PortsPath, for `mynet ports`.
	PortsQuerier interface {
		Ports(*api.PortsQuery) (*api.PortsAnswer, error)
	}
	// Attacher serves api.AttachPath, api.DetachPath and
	// api.EndpointsPath, for `mynet attach`, `detach`, `ls` and `inspect`.
	Attacher interface {
		Attach(*api.AttachRequest) (*api.AttachAnswer, error)
		Detach(*api.DetachRequest) (*api.DetachAnswer, error)
		Endpoints(*api.EndpointsQuery) (*api.EndpointsAnswer, error)
	}
	// Pruner serves api.PrunePath, for `mynet prune`.
	Pruner interface {
		Prune(*api.PruneRequest) (*api.PruneAnswer, error)
	}
)

// handlePrivate registers the private routes d serves with h (NewHandler's
// registration function). Like the others they answer once start-up
// restore is done (see WaitReady).
func handlePrivate(h func(string, func([]byte) (any, error)), d network.Driver) {
	if p, ok := d.(PortsQuerier); ok {
		h(api.PortsPath, call(p.Ports))
	}
	if a, ok := d.(Attacher); ok {
		h(api.AttachPath, call(a.Attach))
		h(api.DetachPath, call(a.Detach))
		h(api.EndpointsPath, call(a.Endpoints))
	}
	if p, ok := d.(Pruner); ok {
		h(api.PrunePath, call(p.Prune))
	}
}
