package cli

// `mynet attach -p SPEC`: published ports written as for `docker run -p`,
// turned into the bindings the engine sends a driver in
// com.docker.network.portmap, so the plugin publishes them exactly as it
// does the engine's.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mynet/mynet/api"
)

// IP protocol numbers, as in the engine's bindings.
var protoNumbers = map[string]int{"tcp": 6, "udp": 17, "sctp": 132}

// publishFlag collects repeated -p flags.
type publishFlag []string

func (p *publishFlag) String() string     { return strings.Join(*p, ",") }
func (p *publishFlag) Set(v string) error { *p = append(*p, v); return nil }

// parsePublish reads one -p spec:
// [[HOST_IP:][HOST_PORT[-END]]:]CONTAINER_PORT[-END][/PROTO], HOST_IP in
// brackets when IPv6. Like docker, a container port range maps to a host
// range of the same length port by port, a single container port with a
// host range takes any one free port of it, and no host port means an
// ephemeral one.
func parsePublish(spec string) ([]api.PortBinding, error) {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("-p %s: %s", spec, fmt.Sprintf(why, args...))
	}
	rest, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	protoNum, ok := protoNumbers[strings.ToLower(proto)]
	if !ok {
		return nil, bad("protocol %q: want tcp, udp or sctp", proto)
	}
	hostIP, hostPorts, ctrPorts, err := splitPublish(rest)
	if err != nil {
		return nil, bad("%v", err)
	}
	if hostIP != "" {
		a, err := netip.ParseAddr(hostIP)
		if err != nil || a.Zone() != "" {
			return nil, bad("host address %q is not an IP address", hostIP)
		}
		hostIP = a.Unmap().String()
	}
	c0, c1, err := portRange(ctrPorts, false)
	if err != nil {
		return nil, bad("container port: %v", err)
	}
	h0, h1, err := portRange(hostPorts, true)
	if err != nil {
		return nil, bad("host port: %v", err)
	}
	if h0 != 0 && c1 != c0 && h1-h0 != c1-c0 {
		return nil, bad("host ports %s and container ports %s are ranges of different lengths", hostPorts, ctrPorts)
	}
	var out []api.PortBinding
	for p := c0; p <= c1; p++ {
		b := api.PortBinding{Proto: protoNum, Port: p, HostIP: hostIP, HostPort: h0, HostPortEnd: h1}
		if c1 != c0 && h0 != 0 {
			b.HostPort = h0 + (p - c0)
			b.HostPortEnd = b.HostPort
		}
		out = append(out, b)
	}
	return out, nil
}

// splitPublish splits "ip:host:ctr", "host:ctr" or "ctr"; ip may be
// "[v6]".
func splitPublish(s string) (hostIP, hostPorts, ctrPorts string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", "", fmt.Errorf("an IPv6 host address in brackets must be followed by ':'")
		}
		hostIP, s = s[1:end], s[end+2:]
		hostPorts, ctrPorts, ok := strings.Cut(s, ":")
		if !ok || strings.Contains(ctrPorts, ":") {
			return "", "", "", fmt.Errorf("want [IP]:HOST_PORT:CONTAINER_PORT")
		}
		return hostIP, hostPorts, ctrPorts, nil
	}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return "", "", parts[0], nil
	case 2:
		return "", parts[0], parts[1], nil
	case 3:
		return parts[0], parts[1], parts[2], nil
	}
	return "", "", "", fmt.Errorf("want [[HOST_IP:][HOST_PORT]:]CONTAINER_PORT (IPv6 host addresses in brackets)")
}

// portRange reads "N" or "N-M"; empty is 0, 0 where allowed (a host port
// left to the kernel).
func portRange(s string, emptyOK bool) (int, int, error) {
	if s == "" {
		if emptyOK {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("missing")
	}
	first, last, isRange := strings.Cut(s, "-")
	lo, err := port(first)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err := port(last)
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %s ends before it starts", s)
	}
	return lo, hi, nil
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return n, nil
}
