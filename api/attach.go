package api

import "time"

// Origins of an endpoint, as `mynet ls` shows them.
const (
	OriginDocker = "docker"
	OriginAttach = "attach"
)

// Attachment is what the record of an attached endpoint adds: whose
// namespace it is in, and where its addresses were leased.
type Attachment struct {
	// Container is the container's full ID; empty for `--pid`.
	Container string `json:"container,omitempty"`
	Name      string `json:"name,omitempty"`
	PID       int    `json:"pid"`
	// Netns identifies the namespace, as /proc/PID/ns/net reads
	// ("net:[4026532281]").
	Netns  string `json:"netns"`
	Ifname string `json:"ifname"`
	// Pool and Pool6 are the IPAM pools the addresses were leased from.
	Pool    string    `json:"pool,omitempty"`
	Pool6   string    `json:"pool6,omitempty"`
	Created time.Time `json:"created"`
}

// PortBinding is one published port as the engine sends it in
// com.docker.network.portmap: Proto is the IP protocol number (6 tcp, 17
// udp, 132 sctp), HostPort 0 an ephemeral port, HostPortEnd above
// HostPort a host port range to choose one port from.
type PortBinding struct {
	Proto       int
	IP          string `json:",omitempty"`
	Port        int
	HostIP      string `json:",omitempty"`
	HostPort    int    `json:",omitempty"`
	HostPortEnd int    `json:",omitempty"`
}

// AttachRequest asks for an endpoint of a network for a namespace.
type AttachRequest struct {
	NetworkID string
	// Address and Address6 are the addresses wanted; "" means the next
	// free one (for IPv6, only on networks that have an IPv6 subnet).
	Address  string `json:",omitempty"`
	Address6 string `json:",omitempty"`
	// Container, Name and PID say whose namespace Netns is, for the record.
	Container string `json:",omitempty"`
	Name      string `json:",omitempty"`
	PID       int
	Netns     string
	Ifname    string
	Ports     []PortBinding `json:",omitempty"`
}

// AttachAnswer is what the CLI needs to finish the job in the namespace.
type AttachAnswer struct {
	EndpointID string
	NetworkID  string
	Bridge     string
	// Veth is the container end, in the host namespace, to be moved.
	Veth     string
	Address  string `json:",omitempty"` // CIDR
	Address6 string `json:",omitempty"`
	// Gateway and Gateway6 are the default routes; none on internal
	// networks or where the bridge has no address.
	Gateway  string `json:",omitempty"`
	Gateway6 string `json:",omitempty"`
	MAC      string
	MTU      int
	Ports    []PublishedPort `json:",omitempty"`
}

// DetachRequest names the attachments to remove from a network: by
// endpoint (the CLI's rollback), by container or by namespace.
type DetachRequest struct {
	NetworkID  string
	EndpointID string `json:",omitempty"`
	Container  string `json:",omitempty"`
	Netns      string `json:",omitempty"`
}

// DetachAnswer lists what was removed.
type DetachAnswer struct {
	Endpoints []EndpointInfo
}
