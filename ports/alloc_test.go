package ports

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// testAllocator allocates from a fake reserver, ephemeral range 32768-32799.
func testAllocator() (*Allocator, *MemReserver) {
	r := NewMemReserver()
	return NewAllocator(r, func() (uint16, uint16, error) { return 32768, 32799, nil }), r
}

var all4 = netip.IPv4Unspecified()

func mappingsString(ms []Mapping) string {
	var b []string
	for _, m := range ms {
		b = append(b, m.String())
	}
	return strings.Join(b, ", ")
}

func tcp(port, hostPort uint16) Request {
	return Request{Proto: "tcp", Port: port, HostPort: hostPort}
}

func tcpRange(first, last, hostFirst uint16) []Request {
	var out []Request
	for p := first; p <= last; p++ {
		out = append(out, tcp(p, hostFirst+(p-first)))
	}
	return out
}

// Runs of consecutive ports become one mapping each (one rule); the
// default host address fills in for bindings without one.
func TestAllocateMergesRuns(t *testing.T) {
	tests := []struct {
		name string
		reqs []Request
		want string
	}{
		{"single", []Request{tcp(80, 8080)}, "80/tcp -> 0.0.0.0:8080"},
		{"kept range", tcpRange(20000, 20999, 20000), "20000-20999/tcp -> 0.0.0.0:20000-20999"},
		{"shifted range", tcpRange(8000, 8099, 9000), "8000-8099/tcp -> 0.0.0.0:9000-9099"},
		{"unsorted with a gap", append(tcpRange(10, 12, 110), tcp(5, 105), tcp(1, 101), tcp(3, 103), tcp(2, 102)),
			"1-3/tcp -> 0.0.0.0:101-103, 5/tcp -> 0.0.0.0:105, 10-12/tcp -> 0.0.0.0:110-112"},
		{"two host ports for one container port", []Request{tcp(80, 8080), tcp(80, 8081)},
			"80/tcp -> 0.0.0.0:8080, 80/tcp -> 0.0.0.0:8081"},
		{"same ports, both protocols", []Request{tcp(53, 53), {Proto: "udp", Port: 53, HostPort: 53}},
			"53/tcp -> 0.0.0.0:53, 53/udp -> 0.0.0.0:53"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := testAllocator()
			ms, holds, err := a.Allocate(v4(tt.reqs, all4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := mappingsString(ms); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if len(holds) != r.Held() {
				t.Errorf("%d holds returned, %d ports held", len(holds), r.Held())
			}
		})
	}
}

func TestAllocateHostAddresses(t *testing.T) {
	a, _ := testAllocator()
	binding := netip.MustParseAddr("192.0.2.1")
	reqs := []Request{tcp(80, 8080), {Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), Port: 80, HostPort: 8080}}
	ms, _, err := a.Allocate(v4(reqs, binding), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "80/tcp -> 127.0.0.1:8080, 80/tcp -> 192.0.2.1:8080"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A taken port fails the whole allocation with an error naming it, and
// nothing stays held.
func TestAllocatePortInUse(t *testing.T) {
	a, r := testAllocator()
	r.Take("tcp", netip.MustParseAddr("0.0.0.0"), 8082)
	reqs := []Request{tcp(80, 8080), tcp(81, 8081), tcp(82, 8082)}
	_, _, err := a.Allocate(v4(reqs, all4), nil)
	var inUse *InUseError
	if !errors.As(err, &inUse) || err.Error() != "host port 8082/tcp on 0.0.0.0 is already in use" {
		t.Fatalf("err = %v, want host port 8082/tcp on 0.0.0.0 is already in use", err)
	}
	if n := r.Held(); n != 0 {
		t.Errorf("%d ports still held after the failure", n)
	}
	// A specific address conflicts with the wildcard and the other way round.
	r.Take("udp", netip.MustParseAddr("127.0.0.1"), 5353)
	if _, _, err := a.Allocate(v4([]Request{{Proto: "udp", Port: 53, HostPort: 5353}}, all4), nil); !errors.As(err, &inUse) {
		t.Errorf("0.0.0.0:5353/udp with 127.0.0.1:5353 taken: err = %v, want in use", err)
	}
}

// `-p 8000-8002:80` takes the first free port of the range, and fails
// with ErrNoFreePort when all are taken.
func TestAllocateRangePick(t *testing.T) {
	a, r := testAllocator()
	r.Take("tcp", netip.MustParseAddr("0.0.0.0"), 8000)
	pick := Request{Proto: "tcp", Port: 80, HostPort: 8000, HostPortEnd: 8002}
	ms, _, err := a.Allocate(v4([]Request{pick}, all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mappingsString(ms); got != "80/tcp -> 0.0.0.0:8001" {
		t.Errorf("got %s, want 80/tcp -> 0.0.0.0:8001", got)
	}
	r.Take("tcp", netip.MustParseAddr("0.0.0.0"), 8002)
	if _, _, err := a.Allocate(v4([]Request{pick}, all4), nil); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("err = %v, want ErrNoFreePort", err)
	}
}

// Ephemeral ports come in order from the range; a run of consecutive
// container ports gets a run of host ports, skipping a taken one; the
// cursor wraps; an exhausted range fails.
func TestAllocateEphemeral(t *testing.T) {
	a, r := testAllocator()
	eph := func(first, last uint16) []Request {
		var out []Request
		for p := first; p <= last; p++ {
			out = append(out, Request{Proto: "tcp", Port: p})
		}
		return out
	}
	r.Take("tcp", netip.MustParseAddr("0.0.0.0"), 32770)
	steps := []struct {
		reqs []Request
		want string
	}{
		{eph(80, 80), "80/tcp -> 0.0.0.0:32768"},
		{eph(8000, 8009), "8000-8009/tcp -> 0.0.0.0:32771-32780"},
		{eph(90, 91), "90-91/tcp -> 0.0.0.0:32781-32782"},
	}
	for _, s := range steps {
		ms, _, err := a.Allocate(v4(s.reqs, all4), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := mappingsString(ms); got != s.want {
			t.Errorf("got %s, want %s", got, s.want)
		}
	}
	// 18 ports left (32769, 32783-32799): a run of 18 cannot be
	// contiguous, so it is taken port by port, from the cursor on.
	ms, _, err := a.Allocate(v4(eph(1, 18), all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "18/tcp -> 0.0.0.0:32769, 1-17/tcp -> 0.0.0.0:32783-32799"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, _, err := a.Allocate(v4(eph(100, 100), all4), nil); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("exhausted range: err = %v, want ErrNoFreePort", err)
	}
	if n := r.Held(); n != 31 {
		t.Errorf("%d ports held, want 31", n)
	}
}

// An endpoint published again gets the host ports it had, if free.
func TestAllocatePrefersPreviousPorts(t *testing.T) {
	a, _ := testAllocator()
	prev := []Mapping{{Proto: "tcp", HostIP: all4, HostPort: 32790, Port: 80, PortEnd: 81}}
	reqs := []Request{{Proto: "tcp", Port: 80}, {Proto: "tcp", Port: 81}, {Proto: "tcp", Port: 443, HostPort: 8443, HostPortEnd: 8450}}
	prev = append(prev, Mapping{Proto: "tcp", HostIP: all4, HostPort: 8447, Port: 443, PortEnd: 443})
	ms, _, err := a.Allocate(v4(reqs, all4), Preferences(prev))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "443/tcp -> 0.0.0.0:8447, 80-81/tcp -> 0.0.0.0:32790-32791"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestEphemeralRangeCursorWraps(t *testing.T) {
	a, _ := testAllocator()
	a.next["tcp"] = 32798
	ms, _, err := a.Allocate(v4([]Request{{Proto: "tcp", Port: 1}, {Proto: "tcp", Port: 2}, {Proto: "tcp", Port: 3}}, all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "1-3/tcp -> 0.0.0.0:32768-32770"; got != want {
		t.Errorf("a block does not wrap over the end of the range: got %s, want %s", got, want)
	}
}

func ExampleInUseError() {
	fmt.Println(&InUseError{Proto: "tcp", HostIP: all4, Port: 8080})
	// Output: host port 8080/tcp on 0.0.0.0 is already in use
}

// v4 resolves reqs as an endpoint of an IPv4-only network does, binding
// being the network's host_binding_ipv4.
func v4(reqs []Request, binding netip.Addr) []HostRequest {
	out, err := Resolve(reqs, binding, ModeNAT, ModeNone)
	if err != nil {
		panic(err)
	}
	return out
}
