// Package ports publishes host ports for mynet's driver: it chooses and
// holds host ports (Allocator, Reserver, SocketReserver), says which host
// addresses a binding gets per address family (Resolve, RoutedMappings),
// and serves what the kernel cannot DNAT in process (Forward). The driver
// keeps the endpoint life cycle and the rules, which package firewall
// generates.
package ports

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Request is one binding of `-p`/`-P` as the engine sends it in
// com.docker.network.portmap, validated. The driver stores it in its
// endpoint records: the JSON names are part of the state file.
type Request struct {
	Proto string `json:"proto"`
	// HostIP is the requested host address, IPv4 or IPv6; the zero Addr
	// means the network's host_binding_ipv4, else all addresses (of both
	// families when the endpoint has both).
	HostIP netip.Addr `json:"host_ip,omitzero"`
	Port   uint16     `json:"port"`
	// HostPort 0 asks for an ephemeral port. HostPortEnd above HostPort
	// asks for any one free port of HostPort..HostPortEnd (`-p 8000-8010:80`).
	HostPort    uint16 `json:"host_port,omitempty"`
	HostPortEnd uint16 `json:"host_port_end,omitempty"`
}

// Mapping is a published run of consecutive ports: host ports
// HostPort.. on HostIP go to container ports Port..PortEnd. Stored in the
// driver's endpoint records, like Request.
type Mapping struct {
	Proto    string     `json:"proto"`
	HostIP   netip.Addr `json:"host_ip"`
	HostPort uint16     `json:"host_port"`
	Port     uint16     `json:"port"`
	PortEnd  uint16     `json:"port_end"`
}

// HostPortEnd is the last host port of m.
func (m Mapping) HostPortEnd() uint16 { return m.HostPort + (m.PortEnd - m.Port) }

func (m Mapping) String() string {
	return fmt.Sprintf("%s/%s -> %s", span(m.Port, m.PortEnd), m.Proto, net.JoinHostPort(m.HostIP.String(), span(m.HostPort, m.HostPortEnd())))
}

func span(first, last uint16) string {
	if first == last {
		return strconv.Itoa(int(first))
	}
	return strconv.Itoa(int(first)) + "-" + strconv.Itoa(int(last))
}

// InUseError reports a host port that something else holds.
type InUseError struct {
	Proto  string
	HostIP netip.Addr
	Port   uint16
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("host port %d/%s on %s is already in use", e.Port, e.Proto, e.HostIP)
}

// ErrNoFreePort is returned when a host port range, or the ephemeral
// range, has no free port left.
var ErrNoFreePort = errors.New("no free host port")

// Reserver holds host ports for published mappings: by default a socket
// per port (SocketReserver); tests and benchmarks that must not touch the
// host pass their own.
type Reserver interface {
	// Reserve reserves port on ip for proto, failing with *InUseError if
	// anything holds it already. Closing the result releases the port.
	Reserve(proto string, ip netip.Addr, port uint16) (io.Closer, error)
}

// pairHold is one host port held on 0.0.0.0 and on ::, the same port in
// both families, as a default binding of a dual-stack endpoint has it.
type pairHold [2]io.Closer

func (p pairHold) Close() error { return errors.Join(p[0].Close(), p[1].Close()) }

// ReleaseAll closes every hold; a close error leaves nothing to do.
func ReleaseAll(hs []io.Closer) {
	for _, h := range hs {
		_ = h.Close()
	}
}

// ContainerPort names a request's container port on a host address, the
// key of a preferred host port: an endpoint published again, or a
// container's ports moving to its new gateway endpoint, keep the
// ephemeral ports they had.
type ContainerPort struct {
	Proto  string
	HostIP netip.Addr
	Port   uint16
}

// Preferences maps the container ports of ms to their host ports.
func Preferences(ms []Mapping) map[ContainerPort]uint16 {
	prefs := map[ContainerPort]uint16{}
	for _, m := range ms {
		for i := 0; i <= int(m.PortEnd-m.Port); i++ {
			prefs[ContainerPort{m.Proto, m.HostIP, m.Port + uint16(i)}] = m.HostPort + uint16(i)
		}
	}
	return prefs
}

// HostPort names one held host port.
type HostPort struct {
	Proto string
	IP    netip.Addr
	Port  uint16
}
