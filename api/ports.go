package api

// PortsQuery selects endpoints for Ports, the query behind `mynet ports`
// (the engine cannot show a remote driver's ports: moby/libnetwork#2451).
// With neither field set it selects every endpoint.
type PortsQuery struct {
	// Endpoints are exact endpoint IDs, e.g. a container's, found by the
	// CLI with `docker container inspect`.
	Endpoints []string `json:",omitempty"`
	// Prefixes are endpoint or network ID prefixes.
	Prefixes []string `json:",omitempty"`
}

// PortsAnswer lists the selected endpoints that have published ports.
type PortsAnswer struct {
	Endpoints []EndpointPorts
}

// EndpointPorts is one endpoint's published ports.
type EndpointPorts struct {
	EndpointID string
	NetworkID  string
	SandboxKey string `json:",omitempty"`
	Address    string `json:",omitempty"`
	Address6   string `json:",omitempty"`
	Ports      []PublishedPort
}

// PublishedPort is a run of published ports: container ports
// Port..PortEnd on HostIP's HostPort.. .
type PublishedPort struct {
	Proto    string
	Port     uint16
	PortEnd  uint16
	HostIP   string
	HostPort uint16
}
