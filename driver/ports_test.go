package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// binding is one portmap entry as the engine sends it (JSON numbers).
func binding(proto, port int, hostIP string, hostPort, hostPortEnd int) map[string]any {
	return map[string]any{"Proto": float64(proto), "IP": "", "Port": float64(port), "HostIP": hostIP,
		"HostPort": float64(hostPort), "HostPortEnd": float64(hostPortEnd)}
}

func portmap(bs ...map[string]any) map[string]any {
	list := make([]any, len(bs))
	for i, b := range bs {
		list[i] = b
	}
	return map[string]any{keyPortMap: list, keyExposedPorts: []any{}}
}

func TestPortRequestsFrom(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		opts    map[string]any
		want    []portRequest
		absent  bool
		wantErr string
	}{
		{name: "absent", opts: map[string]any{}, absent: true},
		{name: "empty", opts: portmap(), want: []portRequest{}},
		{
			name: "fixed, ephemeral, range pick, host address",
			opts: portmap(binding(6, 80, "", 8080, 8080), binding(17, 53, "127.0.0.1", 0, 0), binding(132, 90, "", 5000, 5010)),
			want: []portRequest{
				{Proto: "tcp", Port: 80, HostPort: 8080},
				{Proto: "udp", HostIP: lo, Port: 53},
				{Proto: "sctp", Port: 90, HostPort: 5000, HostPortEnd: 5010},
			},
		},
		{name: "duplicates dropped", opts: portmap(binding(6, 80, "", 8080, 8080), binding(6, 80, "", 8080, 8080)),
			want: []portRequest{{Proto: "tcp", Port: 80, HostPort: 8080}}},
		{name: "icmp", opts: portmap(binding(1, 80, "", 0, 0)), wantErr: "IP protocol 1 is not tcp (6), udp (17) or sctp (132)"},
		{name: "port zero", opts: portmap(binding(6, 0, "", 0, 0)), wantErr: "container port must be 1-65535"},
		{name: "range backwards", opts: portmap(binding(6, 80, "", 9000, 8000)), wantErr: "host ports must be 0-65535, first before last"},
		{name: "range without start", opts: portmap(binding(6, 80, "", 0, 8000)), wantErr: "a host port range needs its first port"},
		{name: "bad host address", opts: portmap(binding(6, 80, "localhost", 8080, 8080)), wantErr: `host address "localhost" is not an IP address`},
		{
			name: "ipv6 host addresses",
			opts: portmap(binding(6, 80, "::", 8080, 8080), binding(17, 53, "::1", 5353, 5353), binding(6, 81, "2001:db8::1", 0, 0), binding(132, 90, "::", 9000, 9000)),
			want: []portRequest{
				{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 80, HostPort: 8080},
				{Proto: "udp", HostIP: netip.IPv6Loopback(), Port: 53, HostPort: 5353},
				{Proto: "tcp", HostIP: netip.MustParseAddr("2001:db8::1"), Port: 81},
				{Proto: "sctp", HostIP: netip.IPv6Unspecified(), Port: 90, HostPort: 9000},
			},
		},
		{name: "ipv4-mapped host address is IPv4", opts: portmap(binding(6, 80, "::ffff:127.0.0.1", 8080, 8080)),
			want: []portRequest{{Proto: "tcp", HostIP: lo, Port: 80, HostPort: 8080}}},
		{name: "sctp on ::1", opts: portmap(binding(132, 80, "::1", 8080, 8080)), wantErr: "port binding [::1]:8080-8080:80/sctp: sctp cannot be published on ::1"},
		{name: "zone", opts: portmap(binding(6, 80, "fe80::1%eth0", 8080, 8080)), wantErr: "addresses with a zone cannot be published"},
		{name: "not a list", opts: map[string]any{keyPortMap: "80:80"}, wantErr: "want a list of port bindings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := portRequestsFrom(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok == tt.absent {
				t.Errorf("ok = %v, want %v", ok, !tt.absent)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// testAllocator allocates from a fake reserver, ephemeral range 32768-32799.
func testAllocator() (*portAllocator, *fakeReserver) {
	r := newFakeReserver()
	return &portAllocator{holder: r, next: map[string]uint16{},
		ephemeral: func() (uint16, uint16, error) { return 32768, 32799, nil }}, r
}

var all4 = netip.IPv4Unspecified()

func mappingsString(ms []portMapping) string {
	var b []string
	for _, m := range ms {
		b = append(b, m.String())
	}
	return strings.Join(b, ", ")
}

func tcp(port, hostPort uint16) portRequest {
	return portRequest{Proto: "tcp", Port: port, HostPort: hostPort}
}

func tcpRange(first, last, hostFirst uint16) []portRequest {
	var out []portRequest
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
		reqs []portRequest
		want string
	}{
		{"single", []portRequest{tcp(80, 8080)}, "80/tcp -> 0.0.0.0:8080"},
		{"kept range", tcpRange(20000, 20999, 20000), "20000-20999/tcp -> 0.0.0.0:20000-20999"},
		{"shifted range", tcpRange(8000, 8099, 9000), "8000-8099/tcp -> 0.0.0.0:9000-9099"},
		{"unsorted with a gap", append(tcpRange(10, 12, 110), tcp(5, 105), tcp(1, 101), tcp(3, 103), tcp(2, 102)),
			"1-3/tcp -> 0.0.0.0:101-103, 5/tcp -> 0.0.0.0:105, 10-12/tcp -> 0.0.0.0:110-112"},
		{"two host ports for one container port", []portRequest{tcp(80, 8080), tcp(80, 8081)},
			"80/tcp -> 0.0.0.0:8080, 80/tcp -> 0.0.0.0:8081"},
		{"same ports, both protocols", []portRequest{tcp(53, 53), {Proto: "udp", Port: 53, HostPort: 53}},
			"53/tcp -> 0.0.0.0:53, 53/udp -> 0.0.0.0:53"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := testAllocator()
			ms, holds, err := a.allocate(v4(tt.reqs, all4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := mappingsString(ms); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if len(holds) != r.heldCount() {
				t.Errorf("%d holds returned, %d ports held", len(holds), r.heldCount())
			}
		})
	}
}

func TestAllocateHostAddresses(t *testing.T) {
	a, _ := testAllocator()
	binding := netip.MustParseAddr("192.0.2.1")
	reqs := []portRequest{tcp(80, 8080), {Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), Port: 80, HostPort: 8080}}
	ms, _, err := a.allocate(v4(reqs, binding), nil)
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
	r.take("tcp", "0.0.0.0", 8082)
	reqs := []portRequest{tcp(80, 8080), tcp(81, 8081), tcp(82, 8082)}
	_, _, err := a.allocate(v4(reqs, all4), nil)
	var inUse *PortInUseError
	if !errors.As(err, &inUse) || err.Error() != "host port 8082/tcp on 0.0.0.0 is already in use" {
		t.Fatalf("err = %v, want host port 8082/tcp on 0.0.0.0 is already in use", err)
	}
	if n := r.heldCount(); n != 0 {
		t.Errorf("%d ports still held after the failure", n)
	}
	// A specific address conflicts with the wildcard and the other way round.
	r.take("udp", "127.0.0.1", 5353)
	if _, _, err := a.allocate(v4([]portRequest{{Proto: "udp", Port: 53, HostPort: 5353}}, all4), nil); !errors.As(err, &inUse) {
		t.Errorf("0.0.0.0:5353/udp with 127.0.0.1:5353 taken: err = %v, want in use", err)
	}
}

// `-p 8000-8002:80` takes the first free port of the range, and fails
// with ErrNoFreePort when all are taken.
func TestAllocateRangePick(t *testing.T) {
	a, r := testAllocator()
	r.take("tcp", "0.0.0.0", 8000)
	pick := portRequest{Proto: "tcp", Port: 80, HostPort: 8000, HostPortEnd: 8002}
	ms, _, err := a.allocate(v4([]portRequest{pick}, all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := mappingsString(ms); got != "80/tcp -> 0.0.0.0:8001" {
		t.Errorf("got %s, want 80/tcp -> 0.0.0.0:8001", got)
	}
	r.take("tcp", "0.0.0.0", 8002)
	if _, _, err := a.allocate(v4([]portRequest{pick}, all4), nil); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("err = %v, want ErrNoFreePort", err)
	}
}

// Ephemeral ports come in order from the range; a run of consecutive
// container ports gets a run of host ports, skipping a taken one; the
// cursor wraps; an exhausted range fails.
func TestAllocateEphemeral(t *testing.T) {
	a, r := testAllocator()
	eph := func(first, last uint16) []portRequest {
		var out []portRequest
		for p := first; p <= last; p++ {
			out = append(out, portRequest{Proto: "tcp", Port: p})
		}
		return out
	}
	r.take("tcp", "0.0.0.0", 32770)
	steps := []struct {
		reqs []portRequest
		want string
	}{
		{eph(80, 80), "80/tcp -> 0.0.0.0:32768"},
		{eph(8000, 8009), "8000-8009/tcp -> 0.0.0.0:32771-32780"},
		{eph(90, 91), "90-91/tcp -> 0.0.0.0:32781-32782"},
	}
	for _, s := range steps {
		ms, _, err := a.allocate(v4(s.reqs, all4), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := mappingsString(ms); got != s.want {
			t.Errorf("got %s, want %s", got, s.want)
		}
	}
	// 18 ports left (32769, 32783-32799): a run of 18 cannot be
	// contiguous, so it is taken port by port, from the cursor on.
	ms, _, err := a.allocate(v4(eph(1, 18), all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "18/tcp -> 0.0.0.0:32769, 1-17/tcp -> 0.0.0.0:32783-32799"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, _, err := a.allocate(v4(eph(100, 100), all4), nil); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("exhausted range: err = %v, want ErrNoFreePort", err)
	}
	if n := r.heldCount(); n != 31 {
		t.Errorf("%d ports held, want 31", n)
	}
}

// An endpoint published again gets the host ports it had, if free.
func TestAllocatePrefersPreviousPorts(t *testing.T) {
	a, _ := testAllocator()
	prev := []portMapping{{Proto: "tcp", HostIP: all4, HostPort: 32790, Port: 80, PortEnd: 81}}
	reqs := []portRequest{{Proto: "tcp", Port: 80}, {Proto: "tcp", Port: 81}, {Proto: "tcp", Port: 443, HostPort: 8443, HostPortEnd: 8450}}
	prev = append(prev, portMapping{Proto: "tcp", HostIP: all4, HostPort: 8447, Port: 443, PortEnd: 443})
	ms, _, err := a.allocate(v4(reqs, all4), preferences(prev))
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
	ms, _, err := a.allocate(v4([]portRequest{{Proto: "tcp", Port: 1}, {Proto: "tcp", Port: 2}, {Proto: "tcp", Port: 3}}, all4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "1-3/tcp -> 0.0.0.0:32768-32770"; got != want {
		t.Errorf("a block does not wrap over the end of the range: got %s, want %s", got, want)
	}
}

func ExamplePortInUseError() {
	fmt.Println(&PortInUseError{Proto: "tcp", HostIP: all4, Port: 8080})
	// Output: host port 8080/tcp on 0.0.0.0 is already in use
}

// v4 resolves reqs as an endpoint of an IPv4-only network does, binding
// being the network's host_binding_ipv4.
func v4(reqs []portRequest, binding netip.Addr) []hostRequest {
	out, err := hostRequests(reqs, binding, modeNAT, modeNone)
	if err != nil {
		panic(err)
	}
	return out
}
