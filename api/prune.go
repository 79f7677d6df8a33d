package api

// PruneRequest names the records that the engine no longer has, as the
// CLI found them.
type PruneRequest struct {
	Networks  []PruneNetwork  `json:",omitempty"`
	Endpoints []PruneEndpoint `json:",omitempty"`
}

// PruneNetwork is a network to remove, with its endpoints.
type PruneNetwork struct {
	ID string
	// ReleasePools releases mynet IPAM's pools of the network's subnets,
	// with their leases, as the engine's ReleasePool would. The CLI sets
	// it when no network the engine has uses those subnets: a network
	// made with Docker's IPAM has no pool of its own, and a pool of the
	// same subnet then belongs to another network.
	ReleasePools bool `json:",omitempty"`
}

// PruneEndpoint is an endpoint (or attachment) to remove, of a network
// that stays.
type PruneEndpoint struct {
	ID string
	// ReleaseLease releases an engine endpoint's addresses in mynet's
	// IPAM, as the engine's ReleaseAddress would; the CLI sets it when the
	// network takes its addresses from mynet. Attachments always release
	// theirs.
	ReleaseLease bool `json:",omitempty"`
}

// PruneAnswer lists what was removed and what was left, and why.
type PruneAnswer struct {
	Networks  []NetworkInfo
	Endpoints []EndpointInfo
	// Pools are the subnets whose pools were released.
	Pools []string `json:",omitempty"`
	// Kept are the records named but left alone, each with the reason.
	Kept []PruneKept `json:",omitempty"`
}

// PruneKept is a record Prune left alone.
type PruneKept struct {
	ID     string
	Kind   string // "network" or "endpoint"
	Reason string
}
