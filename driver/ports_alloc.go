package driver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// portRequest is one binding of `-p`/`-P` as the engine sends it in
// com.docker.network.portmap, validated.
type portRequest struct {
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

// portMapping is a published run of consecutive ports: host ports
// HostPort.. on HostIP go to container ports Port..PortEnd.
type portMapping struct {
	Proto    string     `json:"proto"`
	HostIP   netip.Addr `json:"host_ip"`
	HostPort uint16     `json:"host_port"`
	Port     uint16     `json:"port"`
	PortEnd  uint16     `json:"port_end"`
}

func (m portMapping) hostPortEnd() uint16 { return m.HostPort + (m.PortEnd - m.Port) }

func (m portMapping) String() string {
	return fmt.Sprintf("%s/%s -> %s", span(m.Port, m.PortEnd), m.Proto, net.JoinHostPort(m.HostIP.String(), span(m.HostPort, m.hostPortEnd())))
}

func span(first, last uint16) string {
	if first == last {
		return strconv.Itoa(int(first))
	}
	return strconv.Itoa(int(first)) + "-" + strconv.Itoa(int(last))
}

// PortInUseError reports a host port that something else holds.
type PortInUseError struct {
	Proto  string
	HostIP netip.Addr
	Port   uint16
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("host port %d/%s on %s is already in use", e.Port, e.Proto, e.HostIP)
}

// ErrNoFreePort is returned when a host port range, or the ephemeral
// range, has no free port left.
var ErrNoFreePort = errors.New("no free host port")

// hold keeps one host port reserved until closed.
type hold = io.Closer

// pairHold is one host port held on 0.0.0.0 and on ::, the same port in
// both families, as a default binding of a dual-stack endpoint has it.
type pairHold [2]hold

func (p pairHold) Close() error { return errors.Join(p[0].Close(), p[1].Close()) }

// hostRequest is a request with its host address resolved. dual: the
// host port is also published on ::, the same port in both families
// (HostIP is then 0.0.0.0).
type hostRequest struct {
	portRequest
	dual bool
}

// PortReserver holds host ports for published mappings: by default a
// socket per port (SocketReserver); tests and benchmarks that must not
// touch the host pass their own with WithPortReserver.
type PortReserver interface {
	// ReservePort reserves port on ip for proto, failing with
	// *PortInUseError if anything holds it already.
	ReservePort(proto string, ip netip.Addr, port uint16) (io.Closer, error)
}

// portAllocator chooses host ports and holds them. Ephemeral ports come
// from [lo, hi] (the host's ip_local_port_range), handed out in order
// after the last one given, as Docker does, so that a run of ephemeral
// container ports gets a run of host ports: one rule.
type portAllocator struct {
	holder    PortReserver
	ephemeral func() (lo, hi uint16, err error)
	// next is the next ephemeral port to try, per protocol. Guarded by
	// Driver.mu, like everything the allocator is used for.
	next map[string]uint16
}

// prefKey names a request's host port for re-use: an endpoint published
// again, or a container's ports moving to its new gateway endpoint, keep
// the ephemeral ports they had.
type prefKey struct {
	proto  string
	hostIP netip.Addr
	port   uint16
}

// preferences maps the container ports of ms to their host ports.
func preferences(ms []portMapping) map[prefKey]uint16 {
	prefs := map[prefKey]uint16{}
	for _, m := range ms {
		for i := 0; i <= int(m.PortEnd-m.Port); i++ {
			prefs[prefKey{m.Proto, m.HostIP, m.Port + uint16(i)}] = m.HostPort + uint16(i)
		}
	}
	return prefs
}

// onePort is one chosen host port before runs are merged.
type onePort struct {
	proto    string
	hostIP   netip.Addr
	hostPort uint16
	port     uint16
}

// allocate chooses and holds a host port for every request (with its
// host address resolved, see Driver.hostRequests) and returns the result
// merged into runs. A dual request gets one port free on both 0.0.0.0
// and ::. On error nothing stays held.
func (a *portAllocator) allocate(reqs []hostRequest, prefs map[prefKey]uint16) (_ []portMapping, _ []hold, retErr error) {
	reqs = sortRequests(reqs)
	var holds []hold
	defer func() {
		if retErr != nil {
			releaseAll(holds)
		}
	}()
	var chosen []onePort
	for i := 0; i < len(reqs); {
		r := reqs[i]
		n := 1
		if r.HostPort == 0 {
			n = ephemeralRun(reqs[i:])
		}
		ps, hs, err := a.allocateOne(reqs[i:i+n], prefs)
		holds = append(holds, hs...)
		if err != nil {
			return nil, nil, err
		}
		chosen = append(chosen, ps...)
		if r.dual {
			for _, p := range ps {
				p.hostIP = netip.IPv6Unspecified()
				chosen = append(chosen, p)
			}
		}
		i += n
	}
	return mergeRuns(chosen), holds, nil
}

// sortRequests drops duplicates and sorts, so that consecutive container
// ports end up next to each other.
func sortRequests(reqs []hostRequest) []hostRequest {
	out := make([]hostRequest, 0, len(reqs))
	for _, r := range reqs {
		if r.HostPortEnd < r.HostPort {
			r.HostPortEnd = r.HostPort
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y hostRequest) int {
		return cmpAll(strings.Compare(x.Proto, y.Proto), x.HostIP.Compare(y.HostIP), cmpBool(x.dual, y.dual),
			int(x.Port)-int(y.Port), int(x.HostPort)-int(y.HostPort), int(x.HostPortEnd)-int(y.HostPortEnd))
	})
	return slices.Compact(out)
}

func cmpBool(x, y bool) int {
	switch {
	case x == y:
		return 0
	case x:
		return 1
	}
	return -1
}

func cmpAll(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// ephemeralRun counts the leading ephemeral requests of reqs that share
// protocol and host addresses and have consecutive container ports.
func ephemeralRun(reqs []hostRequest) int {
	n := 1
	for n < len(reqs) {
		r, prev := reqs[n], reqs[n-1]
		if r.HostPort != 0 || r.Proto != prev.Proto || r.HostIP != prev.HostIP || r.dual != prev.dual || r.Port != prev.Port+1 {
			break
		}
		n++
	}
	return n
}

// allocateOne chooses host ports for one fixed request, one range request
// or one run of ephemeral requests.
func (a *portAllocator) allocateOne(reqs []hostRequest, prefs map[prefKey]uint16) ([]onePort, []hold, error) {
	r := reqs[0]
	switch {
	case r.HostPort != 0 && r.HostPortEnd == r.HostPort:
		h, err := a.reserve(r, r.HostPort)
		if err != nil {
			return nil, nil, err
		}
		return []onePort{{r.Proto, r.HostIP, r.HostPort, r.Port}}, []hold{h}, nil
	case r.HostPort != 0:
		return a.allocateInRange(r, prefs)
	default:
		return a.allocateEphemeral(reqs, prefs)
	}
}

// reserve holds port for r: on r.HostIP, and for a dual request on ::
// as well, or on neither.
func (a *portAllocator) reserve(r hostRequest, port uint16) (hold, error) {
	h, err := a.holder.ReservePort(r.Proto, r.HostIP, port)
	if err != nil || !r.dual {
		return h, err
	}
	h6, err := a.holder.ReservePort(r.Proto, netip.IPv6Unspecified(), port)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return pairHold{h, h6}, nil
}

// allocateInRange holds the first free port of r's host range, the one
// the container had before if it is free.
func (a *portAllocator) allocateInRange(r hostRequest, prefs map[prefKey]uint16) ([]onePort, []hold, error) {
	candidates := make([]uint16, 0, int(r.HostPortEnd-r.HostPort)+2)
	if p, ok := prefs[prefKey{r.Proto, r.HostIP, r.Port}]; ok && p >= r.HostPort && p <= r.HostPortEnd {
		candidates = append(candidates, p)
	}
	for p := int(r.HostPort); p <= int(r.HostPortEnd); p++ {
		candidates = append(candidates, uint16(p))
	}
	for _, p := range candidates {
		h, err := a.reserve(r, p)
		var inUse *PortInUseError
		if errors.As(err, &inUse) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return []onePort{{r.Proto, r.HostIP, p, r.Port}}, []hold{h}, nil
	}
	return nil, nil, fmt.Errorf("%w in %d-%d/%s on %s for container port %d: all are in use", ErrNoFreePort, r.HostPort, r.HostPortEnd, r.Proto, r.hostText(), r.Port)
}

// allocateEphemeral holds a block of consecutive ephemeral ports for a run
// of consecutive container ports (one rule), trying the block the
// container had before first; without any such block it takes ports one
// by one.
func (a *portAllocator) allocateEphemeral(reqs []hostRequest, prefs map[prefKey]uint16) ([]onePort, []hold, error) {
	lo, hi, err := a.ephemeral()
	if err != nil {
		return nil, nil, err
	}
	r, n := reqs[0], len(reqs)
	if start, ok := preferredBlock(reqs, prefs, lo, hi); ok {
		if hs, ok := a.tryBlock(r, start, n); ok {
			return block(reqs, start), hs, nil
		}
	}
	if n <= int(hi-lo)+1 {
		if start, hs, ok := a.findBlock(r, n, lo, hi); ok {
			return block(reqs, start), hs, nil
		}
	}
	if n == 1 {
		return nil, nil, fmt.Errorf("%w in the ephemeral range %d-%d/%s on %s", ErrNoFreePort, lo, hi, r.Proto, r.hostText())
	}
	var out []onePort
	var holds []hold
	for _, one := range reqs {
		ps, hs, err := a.allocateEphemeral([]hostRequest{one}, prefs)
		holds = append(holds, hs...)
		if err != nil {
			releaseAll(holds)
			return nil, nil, err
		}
		out = append(out, ps...)
	}
	return out, holds, nil
}

// preferredBlock is the host block the run had before, if it had one
// inside [lo, hi].
func preferredBlock(reqs []hostRequest, prefs map[prefKey]uint16, lo, hi uint16) (uint16, bool) {
	r := reqs[0]
	start, ok := prefs[prefKey{r.Proto, r.HostIP, r.Port}]
	if !ok || start < lo || int(start)+len(reqs)-1 > int(hi) {
		return 0, false
	}
	for i, q := range reqs {
		if p, ok := prefs[prefKey{q.Proto, q.HostIP, q.Port}]; !ok || p != start+uint16(i) {
			return 0, false
		}
	}
	return start, true
}

// findBlock searches [lo, hi] for n consecutive free ports, starting at
// the protocol's cursor and wrapping around once.
func (a *portAllocator) findBlock(r hostRequest, n int, lo, hi uint16) (uint16, []hold, bool) {
	size := int(hi-lo) + 1
	cur := a.next[r.Proto]
	if cur < lo || cur > hi {
		cur = lo
	}
	off := int(cur - lo)
	for tried := 0; tried < size; {
		start := lo + uint16((off+tried)%size)
		if int(start)+n-1 > int(hi) {
			tried += int(hi-start) + 1 // a block cannot wrap: go back to lo
			continue
		}
		hs, failedAt, ok := a.holdBlock(r, start, n)
		if ok {
			a.next[r.Proto] = start + uint16(n-1) + 1
			return start, hs, true
		}
		tried += failedAt + 1
	}
	return 0, nil, false
}

// tryBlock holds start..start+n-1 or nothing.
func (a *portAllocator) tryBlock(r hostRequest, start uint16, n int) ([]hold, bool) {
	hs, _, ok := a.holdBlock(r, start, n)
	return hs, ok
}

// holdBlock holds start..start+n-1; on the first port that is taken it
// releases what it held and reports that port's offset.
func (a *portAllocator) holdBlock(r hostRequest, start uint16, n int) ([]hold, int, bool) {
	hs := make([]hold, 0, n)
	for i := range n {
		h, err := a.reserve(r, start+uint16(i))
		if err != nil {
			releaseAll(hs)
			return nil, i, false
		}
		hs = append(hs, h)
	}
	return hs, 0, true
}

func block(reqs []hostRequest, start uint16) []onePort {
	out := make([]onePort, len(reqs))
	for i, r := range reqs {
		out[i] = onePort{r.Proto, r.HostIP, start + uint16(i), r.Port}
	}
	return out
}

// mergeRuns turns chosen ports into runs where host and container ports
// both go up by one: a range is one rule.
func mergeRuns(ps []onePort) []portMapping {
	slices.SortFunc(ps, func(x, y onePort) int {
		return cmpAll(strings.Compare(x.proto, y.proto), x.hostIP.Compare(y.hostIP), int(x.hostPort)-int(y.hostPort))
	})
	var out []portMapping
	for _, p := range ps {
		if k := len(out) - 1; k >= 0 {
			last := &out[k]
			if last.Proto == p.proto && last.HostIP == p.hostIP && p.hostPort == last.hostPortEnd()+1 && p.port == last.PortEnd+1 && last.PortEnd < 65535 {
				last.PortEnd++
				continue
			}
		}
		out = append(out, portMapping{Proto: p.proto, HostIP: p.hostIP, HostPort: p.hostPort, Port: p.port, PortEnd: p.port})
	}
	return out
}

// hostText names r's host addresses for errors.
func (r hostRequest) hostText() string {
	if r.dual {
		return r.HostIP.String() + " and ::"
	}
	return r.HostIP.String()
}

// releaseAll closes every hold; a close error leaves nothing to do.
func releaseAll(hs []hold) {
	for _, h := range hs {
		_ = h.Close()
	}
}
