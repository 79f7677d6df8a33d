package ports

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/firewall"
)

// localPortRangePath holds the host's ephemeral port range, "LOW\tHIGH".
// Read-only access is enough, so a managed plugin's read-only /proc/sys
// (which shows the host's namespace for a plugin on the host network)
// does.
const localPortRangePath = "/proc/sys/net/ipv4/ip_local_port_range"

// SocketReserver reserves a host port with a socket bound to it: bound, not
// listening, without SO_REUSEADDR or SO_REUSEPORT. While it is open the
// kernel refuses the port to every other bind (with or without those
// options, on the same or the wildcard address) and to outgoing
// connections' automatic port choice; DNAT happens before the socket
// lookup, so the socket never sees the published traffic. One descriptor
// per port and protocol: the kernel has no cheaper "fail if in use, then
// keep it" for a port range (ip_local_reserved_ports only keeps automatic
// choices away, a cgroup bind hook needs cgroup v2 and BPF).
//
// IPv6 sockets are IPV6_V6ONLY, so that 0.0.0.0:P and [::]:P are two
// independent holds (without it [::]:P would also take 0.0.0.0:P, and
// the second of a dual-stack pair would fail as in use).
type SocketReserver struct{}

// socketHold is a held port: the socket and what it holds, so that the
// forwarder can take over the socket of a port it serves.
type socketHold struct {
	fd    int
	proto string
	ip    netip.Addr
	port  uint16
}

func (h socketHold) Close() error { return unix.Close(h.fd) }

// noHold stands for a port that needs no reservation.
type noHold struct{}

func (noHold) Close() error { return nil }

// Reserve holds port on ip for proto with a bound socket; a kernel without
// SCTP needs no hold for an SCTP port.
func (SocketReserver) Reserve(proto string, ip netip.Addr, port uint16) (io.Closer, error) {
	fd, err := bindHold(proto, ip, port, false)
	if errors.Is(err, unix.EADDRINUSE) && proto == firewall.ProtoTCP && ip.Is6() {
		// An IPv6 TCP port the forwarder served before keeps its closed
		// connections in TIME_WAIT for a minute, and they refuse a bind
		// without SO_REUSEADDR: a container restarted with
		// -p [::1]:P:80 would find its own port "in use". With
		// SO_REUSEADDR the bind ignores them, and still fails against
		// any bound socket without it and any listening one; the forwarder
		// listens on the socket right after the rules are in place.
		fd, err = bindHold(proto, ip, port, true)
	}
	if proto == firewall.ProtoSCTP && errors.Is(err, unix.EPROTONOSUPPORT) {
		// No SCTP in this kernel: nothing on the host can take the port.
		return noHold{}, nil
	}
	if err != nil {
		return nil, reserveError(proto, ip, port, err)
	}
	return socketHold{fd: fd, proto: proto, ip: ip, port: port}, nil
}

// bindHold opens a socket for proto and binds it to ip:port; IPv6 sockets
// are IPV6_V6ONLY.
func bindHold(proto string, ip netip.Addr, port uint16, reuse bool) (int, error) {
	typ, ipProto := unix.SOCK_STREAM, 0
	switch proto {
	case firewall.ProtoUDP:
		typ = unix.SOCK_DGRAM
	case firewall.ProtoSCTP:
		ipProto = unix.IPPROTO_SCTP
	}
	family, sa := sockaddr(ip, port)
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, ipProto)
	if err != nil {
		return -1, err
	}
	if ip.Is6() {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil && reuse {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// sockaddr is ip:port for bind, with its address family.
func sockaddr(ip netip.Addr, port uint16) (int, unix.Sockaddr) {
	if ip.Is6() {
		return unix.AF_INET6, &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	}
	return unix.AF_INET, &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
}

// reserveError turns a socket or bind error into one the user can act on.
func reserveError(proto string, ip netip.Addr, port uint16, err error) error {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return &InUseError{Proto: proto, HostIP: ip, Port: port}
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("host address %s for port %d/%s is not an address of this host", ip, port, proto)
	case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE):
		return fmt.Errorf("reserving host port %d/%s on %s: %w (mynet holds one descriptor per published host port: raise its open-file limit)", port, proto, ip, err)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("reserving host port %d/%s on %s: %w (ports below 1024 need CAP_NET_BIND_SERVICE)", port, proto, ip, err)
	}
	return fmt.Errorf("reserving host port %d/%s on %s: %w", port, proto, ip, err)
}

// LocalPortRange reads the host's ephemeral port range, for NewAllocator.
func LocalPortRange() (lo, hi uint16, err error) {
	b, err := os.ReadFile(localPortRangePath)
	if err != nil {
		return 0, 0, fmt.Errorf("ephemeral port range: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ephemeral port range: unexpected %q in %s", b, localPortRangePath)
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("ephemeral port range: unexpected %q in %s", b, localPortRangePath)
	}
	return uint16(l), uint16(h), nil
}
