package ports

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// HostRequest is a Request with its host address resolved (see Resolve).
// Dual: the host port is also published on ::, the same port in both
// families (HostIP is then 0.0.0.0).
type HostRequest struct {
	Request
	Dual bool
}

// Allocator chooses host ports and holds them. Ephemeral ports come
// from [lo, hi] (the host's ip_local_port_range), handed out in order
// after the last one given, as Docker does, so that a run of ephemeral
// container ports gets a run of host ports: one rule. An Allocator is not
// safe for concurrent use: the driver calls it under its own lock.
type Allocator struct {
	reserver  Reserver
	ephemeral func() (lo, hi uint16, err error)
	// next is the next ephemeral port to try, per protocol.
	next map[string]uint16
}

// NewAllocator returns an allocator that holds ports with r and takes
// ephemeral ports from the range ephemeral reads (LocalPortRange on a
// host), asked at each allocation, so that a changed sysctl applies.
func NewAllocator(r Reserver, ephemeral func() (lo, hi uint16, err error)) *Allocator {
	return &Allocator{reserver: r, ephemeral: ephemeral, next: map[string]uint16{}}
}

// Reserve holds one given host port outside any allocation, as the
// driver re-takes the ports of its published mappings after a restart.
func (a *Allocator) Reserve(proto string, ip netip.Addr, port uint16) (io.Closer, error) {
	return a.reserver.Reserve(proto, ip, port)
}

// onePort is one chosen host port before runs are merged.
type onePort struct {
	proto    string
	hostIP   netip.Addr
	hostPort uint16
	port     uint16
}

// Allocate chooses and holds a host port for every request (with its
// host address resolved, see Resolve) and returns the result
// merged into runs. A dual request gets one port free on both 0.0.0.0
// and ::. On error nothing stays held.
func (a *Allocator) Allocate(reqs []HostRequest, prefs map[ContainerPort]uint16) (_ []Mapping, _ []io.Closer, retErr error) {
	reqs = sortRequests(reqs)
	var holds []io.Closer
	defer func() {
		if retErr != nil {
			ReleaseAll(holds)
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
		if r.Dual {
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
func sortRequests(reqs []HostRequest) []HostRequest {
	out := make([]HostRequest, 0, len(reqs))
	for _, r := range reqs {
		if r.HostPortEnd < r.HostPort {
			r.HostPortEnd = r.HostPort
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y HostRequest) int {
		return cmpAll(strings.Compare(x.Proto, y.Proto), x.HostIP.Compare(y.HostIP), cmpBool(x.Dual, y.Dual),
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
func ephemeralRun(reqs []HostRequest) int {
	n := 1
	for n < len(reqs) {
		r, prev := reqs[n], reqs[n-1]
		if r.HostPort != 0 || r.Proto != prev.Proto || r.HostIP != prev.HostIP || r.Dual != prev.Dual || r.Port != prev.Port+1 {
			break
		}
		n++
	}
	return n
}

// allocateOne chooses host ports for one fixed request, one range request
// or one run of ephemeral requests.
func (a *Allocator) allocateOne(reqs []HostRequest, prefs map[ContainerPort]uint16) ([]onePort, []io.Closer, error) {
	r := reqs[0]
	switch {
	case r.HostPort != 0 && r.HostPortEnd == r.HostPort:
		h, err := a.reserve(r, r.HostPort)
		if err != nil {
			return nil, nil, err
		}
		return []onePort{{r.Proto, r.HostIP, r.HostPort, r.Port}}, []io.Closer{h}, nil
	case r.HostPort != 0:
		return a.allocateInRange(r, prefs)
	default:
		return a.allocateEphemeral(reqs, prefs)
	}
}

// reserve holds port for r: on r.HostIP, and for a dual request on ::
// as well, or on neither.
func (a *Allocator) reserve(r HostRequest, port uint16) (io.Closer, error) {
	h, err := a.reserver.Reserve(r.Proto, r.HostIP, port)
	if err != nil || !r.Dual {
		return h, err
	}
	h6, err := a.reserver.Reserve(r.Proto, netip.IPv6Unspecified(), port)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return pairHold{h, h6}, nil
}

// allocateInRange holds the first free port of r's host range, the one
// the container had before if it is free.
func (a *Allocator) allocateInRange(r HostRequest, prefs map[ContainerPort]uint16) ([]onePort, []io.Closer, error) {
	candidates := make([]uint16, 0, int(r.HostPortEnd-r.HostPort)+2)
	if p, ok := prefs[ContainerPort{r.Proto, r.HostIP, r.Port}]; ok && p >= r.HostPort && p <= r.HostPortEnd {
		candidates = append(candidates, p)
	}
	for p := int(r.HostPort); p <= int(r.HostPortEnd); p++ {
		candidates = append(candidates, uint16(p))
	}
	for _, p := range candidates {
		h, err := a.reserve(r, p)
		var inUse *InUseError
		if errors.As(err, &inUse) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return []onePort{{r.Proto, r.HostIP, p, r.Port}}, []io.Closer{h}, nil
	}
	return nil, nil, fmt.Errorf("%w in %d-%d/%s on %s for container port %d: all are in use", ErrNoFreePort, r.HostPort, r.HostPortEnd, r.Proto, r.hostText(), r.Port)
}

// allocateEphemeral holds a block of consecutive ephemeral ports for a run
// of consecutive container ports (one rule), trying the block the
// container had before first; without any such block it takes ports one
// by one.
func (a *Allocator) allocateEphemeral(reqs []HostRequest, prefs map[ContainerPort]uint16) ([]onePort, []io.Closer, error) {
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
	var holds []io.Closer
	for _, one := range reqs {
		ps, hs, err := a.allocateEphemeral([]HostRequest{one}, prefs)
		holds = append(holds, hs...)
		if err != nil {
			ReleaseAll(holds)
			return nil, nil, err
		}
		out = append(out, ps...)
	}
	return out, holds, nil
}

// preferredBlock is the host block the run had before, if it had one
// inside [lo, hi].
func preferredBlock(reqs []HostRequest, prefs map[ContainerPort]uint16, lo, hi uint16) (uint16, bool) {
	r := reqs[0]
	start, ok := prefs[ContainerPort{r.Proto, r.HostIP, r.Port}]
	if !ok || start < lo || int(start)+len(reqs)-1 > int(hi) {
		return 0, false
	}
	for i, q := range reqs {
		if p, ok := prefs[ContainerPort{q.Proto, q.HostIP, q.Port}]; !ok || p != start+uint16(i) {
			return 0, false
		}
	}
	return start, true
}

// findBlock searches [lo, hi] for n consecutive free ports, starting at
// the protocol's cursor and wrapping around once.
func (a *Allocator) findBlock(r HostRequest, n int, lo, hi uint16) (uint16, []io.Closer, bool) {
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
func (a *Allocator) tryBlock(r HostRequest, start uint16, n int) ([]io.Closer, bool) {
	hs, _, ok := a.holdBlock(r, start, n)
	return hs, ok
}

// holdBlock holds start..start+n-1; on the first port that is taken it
// releases what it held and reports that port's offset.
func (a *Allocator) holdBlock(r HostRequest, start uint16, n int) ([]io.Closer, int, bool) {
	hs := make([]io.Closer, 0, n)
	for i := range n {
		h, err := a.reserve(r, start+uint16(i))
		if err != nil {
			ReleaseAll(hs)
			return nil, i, false
		}
		hs = append(hs, h)
	}
	return hs, 0, true
}

func block(reqs []HostRequest, start uint16) []onePort {
	out := make([]onePort, len(reqs))
	for i, r := range reqs {
		out[i] = onePort{r.Proto, r.HostIP, start + uint16(i), r.Port}
	}
	return out
}

// mergeRuns turns chosen ports into runs where host and container ports
// both go up by one: a range is one rule.
func mergeRuns(ps []onePort) []Mapping {
	slices.SortFunc(ps, func(x, y onePort) int {
		return cmpAll(strings.Compare(x.proto, y.proto), x.hostIP.Compare(y.hostIP), int(x.hostPort)-int(y.hostPort))
	})
	var out []Mapping
	for _, p := range ps {
		if k := len(out) - 1; k >= 0 {
			last := &out[k]
			if last.Proto == p.proto && last.HostIP == p.hostIP && p.hostPort == last.HostPortEnd()+1 && p.port == last.PortEnd+1 && last.PortEnd < 65535 {
				last.PortEnd++
				continue
			}
		}
		out = append(out, Mapping{Proto: p.proto, HostIP: p.hostIP, HostPort: p.hostPort, Port: p.port, PortEnd: p.port})
	}
	return out
}

// hostText names r's host addresses for errors.
func (r HostRequest) hostText() string {
	if r.Dual {
		return r.HostIP.String() + " and ::"
	}
	return r.HostIP.String()
}
