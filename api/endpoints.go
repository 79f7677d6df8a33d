package api

// EndpointsQuery selects the networks whose endpoints Endpoints lists:
// Network is a network ID or its prefix; empty selects every network.
type EndpointsQuery struct {
	Network string `json:",omitempty"`
}

// EndpointsAnswer is the query behind `mynet ls` and `mynet inspect`.
type EndpointsAnswer struct {
	Networks  []NetworkInfo
	Endpoints []EndpointInfo
}

// NetworkInfo is a network as mynet knows it.
type NetworkInfo struct {
	ID       string
	Bridge   string
	Subnet   string `json:",omitempty"`
	Gateway  string `json:",omitempty"`
	Subnet6  string `json:",omitempty"`
	Gateway6 string `json:",omitempty"`
}

// EndpointInfo is an endpoint as mynet knows it, with its origin: the
// engine's ("docker") or `mynet attach`'s ("attach", with Attach set).
type EndpointInfo struct {
	ID         string
	NetworkID  string
	Origin     string
	Address    string `json:",omitempty"`
	Address6   string `json:",omitempty"`
	MAC        string
	HostVeth   string
	PeerVeth   string
	SandboxKey string          `json:",omitempty"`
	Ports      []PublishedPort `json:",omitempty"`
	Attach     *Attachment     `json:",omitempty"`
}
