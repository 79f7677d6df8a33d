package driver

import (
	"net/netip"
	"testing"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
)

// The reaper's decision, round by round: an endpoint is reaped only after
// looking unused in every round for the whole grace with no Join since
// the run began.
func TestJudgeOrphan(t *testing.T) {
	const grace = 30 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type round struct {
		at       int  // seconds after t0
		unused   bool // this round's sighting
		wantReap bool
	}
	tests := []struct {
		name   string
		joined time.Time // last Join; zero: none
		rounds []round
	}{
		{name: "never joined: reaped once the grace is over, not before",
			rounds: []round{{0, true, false}, {29, true, false}, {30, true, true}}},
		{name: "joined before it went unused: the grace counts from the first sighting",
			joined: at(-60), rounds: []round{{0, true, false}, {31, true, true}}},
		{name: "joined during the run: the grace starts again",
			joined: at(10), rounds: []round{{0, true, false}, {31, true, false}, {40, true, false}, {61, true, true}}},
		{name: "in use: never reaped",
			rounds: []round{{0, false, false}, {100, false, false}, {1000, false, false}}},
		{name: "came back into a container: the run ends and starts anew",
			rounds: []round{{0, true, false}, {20, false, false}, {40, true, false}, {60, true, false}, {70, true, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var since time.Time
			for _, r := range tt.rounds {
				var reap bool
				since, reap = judgeOrphan(r.unused, since, tt.joined, at(r.at), grace)
				if reap != r.wantReap {
					t.Fatalf("round at %d s (unused %v): reap = %v, want %v", r.at, r.unused, reap, r.wantReap)
				}
			}
		})
	}
}

// unusedReason reads the host namespace's links: a container end here, or
// both ends gone, is unused; a host end here with its container end out
// of sight is a container's.
func TestUnusedReason(t *testing.T) {
	ep := &endpointState{HostVeth: "mnhX", PeerVeth: "mncX"}
	for _, tt := range []struct {
		name   string
		links  []string
		unused bool
	}{
		{"in a container", []string{"mnhX"}, false},
		{"container end back in the host namespace", []string{"mnhX", "mncX"}, true},
		{"pair gone", nil, true},
	} {
		inHost := map[string]bool{}
		for _, l := range tt.links {
			inHost[l] = true
		}
		if got := unusedReason(ep, inHost) != ""; got != tt.unused {
			t.Errorf("%s: unused = %v, want %v", tt.name, got, tt.unused)
		}
	}
}

// reaperRig is an attachRig with the orphan reaper's lease book and an
// engine endpoint whose address the engine leased from mynet's IPAM and
// whose port 80 is published on host port 8080.
func newReaperRig(t *testing.T, epID, addr string) *attachRig {
	t.Helper()
	r := newAttachRig(t)
	r.d.UseLeases(r.am)
	r.engineEndpoint(t, epID, addr, 8080)
	return r
}

// engineEndpoint does what the engine does for a container start with --ip
// addr and -p hostPort:80: lease, CreateEndpoint, Join, publish; and then
// moves the container end out of the host namespace.
func (r *attachRig) engineEndpoint(t *testing.T, epID, addr string, hostPort int) {
	t.Helper()
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: r.pool, Address: addr, Options: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	req := epReq(addr+"/24", "")
	req.EndpointID = epID
	if _, err := r.d.CreateEndpoint(req); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: epID, SandboxKey: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: epID,
		Options: portmap(binding(6, 80, "", hostPort, hostPort))}); err != nil {
		t.Fatal(err)
	}
	moveOut(t, r.k, r.d.endpoints[epID].PeerVeth) // into the container
}

func (r *attachRig) delLink(t *testing.T, name string) {
	t.Helper()
	l, err := r.k.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	_ = r.k.LinkDel(l)
}

// round runs one reaper round at now with the fake kernel's links.
func (r *attachRig) round(t *testing.T, now time.Time) int {
	t.Helper()
	inHost, err := r.d.hostLinks()
	if err != nil {
		t.Fatal(err)
	}
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return r.d.reapOrphans(now, inHost)
}

// A container removed while mynet was down leaves an endpoint whose pair
// is gone: after the grace it is removed with its ports and its lease,
// as DeleteEndpoint and the engine's ReleaseAddress would have.
func TestReapGoneEndpoint(t *testing.T) {
	r := newReaperRig(t, testEpID, "10.50.0.9")
	now := time.Now()
	if n := r.round(t, now); n != 0 {
		t.Fatalf("a container's endpoint reaped: %d", n)
	}
	r.delLink(t, "mnhe1e2e3e4e5e6") // the container's namespace went
	if n := r.round(t, now.Add(time.Second)); n != 0 {
		t.Fatalf("reaped at the first sighting: %d", n)
	}
	if n := r.round(t, now.Add(DefaultOrphanGrace)); n != 0 {
		t.Fatalf("reaped inside the grace: %d", n)
	}
	if n := r.round(t, now.Add(DefaultOrphanGrace+2*time.Second)); n != 1 {
		t.Fatalf("reaped %d after the grace, want 1", n)
	}
	r.assertClean(t, "10.50.0.9")
	if len(r.d.holds) != 0 {
		t.Errorf("host ports still held: %v", r.d.holds)
	}
	if n := r.round(t, now.Add(time.Hour)); n != 0 {
		t.Errorf("a second round reaped %d", n)
	}
}

// A container that keeps running (its host end here, its container end in
// its namespace) is never reaped, whatever the time; one whose container
// end came back to the host namespace is, with the grace counted from
// then.
func TestReapKeepsLiveEndpoint(t *testing.T) {
	r := newReaperRig(t, testEpID, "10.50.0.9")
	now := time.Now()
	for i := range 5 {
		if n := r.round(t, now.Add(time.Duration(i)*DefaultOrphanGrace)); n != 0 {
			t.Fatalf("a running container's endpoint reaped after %v", time.Duration(i)*DefaultOrphanGrace)
		}
	}
	if _, ok := r.d.endpoints[testEpID]; !ok || !r.leased(t, "10.50.0.9") || len(r.fw.published()) != 1 || len(r.d.holds[testEpID]) != 1 {
		t.Fatalf("the live endpoint lost something: record %v, lease %v, rules %v, holds %v", ok, r.leased(t, "10.50.0.9"), r.fw.published(), r.d.holds)
	}
	// Leave moves the container end back; no DeleteEndpoint follows.
	if err := r.k.MoveBack("mnce1e2e3e4e5e6"); err != nil {
		t.Fatal(err)
	}
	later := now.Add(10 * DefaultOrphanGrace)
	if n := r.round(t, later); n != 0 {
		t.Fatalf("reaped at the first sighting after it came back: %d", n)
	}
	if n := r.round(t, later.Add(DefaultOrphanGrace)); n != 1 {
		t.Fatalf("reaped %d a grace after it came back, want 1", n)
	}
	r.assertClean(t, "10.50.0.9")
}

// An endpoint between CreateEndpoint and Join (its container end in the
// host namespace) is kept for the grace, and a Join keeps it for good.
func TestReapWaitsForJoin(t *testing.T) {
	r := newAttachRig(t)
	r.d.UseLeases(r.am)
	if _, err := r.d.CreateEndpoint(epReq("10.50.0.9/24", "")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.round(t, now)
	if n := r.round(t, now.Add(DefaultOrphanGrace-time.Second)); n != 0 {
		t.Fatalf("reaped %d inside the grace", n)
	}
	if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
		t.Fatal(err)
	}
	// The engine takes its time moving the interface: the Join counts.
	if n := r.round(t, now.Add(DefaultOrphanGrace+time.Second)); n != 0 {
		t.Fatalf("reaped %d right after a Join", n)
	}
	moveOut(t, r.k, "mnce1e2e3e4e5e6")
	if n := r.round(t, now.Add(10*DefaultOrphanGrace)); n != 0 {
		t.Fatalf("reaped %d joined endpoint", n)
	}
}

// The reaper releases only a lease that is the endpoint's own: not when
// another endpoint record holds the address (the engine's release got
// through and the address went to a new container), not when the network
// uses Docker's IPAM (no pool of mynet's), and the grace is configurable.
func TestReapReleasesOnlyItsLease(t *testing.T) {
	t.Run("address held by another endpoint", func(t *testing.T) {
		r := newReaperRig(t, testEpID, "10.50.0.9")
		r.d.SetOrphanGrace(time.Second)
		other := epReq("10.50.0.9/24", "")
		other.EndpointID = "0123456789abcdef"
		if _, err := r.d.CreateEndpoint(other); err != nil {
			t.Fatal(err)
		}
		if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: other.EndpointID}); err != nil {
			t.Fatal(err)
		}
		moveOut(t, r.k, "mnc0123456789ab")
		r.delLink(t, "mnhe1e2e3e4e5e6")
		now := time.Now()
		r.round(t, now)
		if n := r.round(t, now.Add(2*time.Second)); n != 1 {
			t.Fatalf("reaped %d with a 1 s grace, want 1", n)
		}
		if !r.leased(t, "10.50.0.9") {
			t.Error("the lease of the other endpoint's address was released")
		}
	})
	t.Run("Docker's IPAM", func(t *testing.T) {
		r := newReaperRig(t, testEpID, "10.50.0.9")
		r.d.UseLeases(noPools{r.am})
		r.delLink(t, "mnhe1e2e3e4e5e6")
		now := time.Now()
		r.round(t, now)
		if n := r.round(t, now.Add(DefaultOrphanGrace)); n != 1 {
			t.Fatalf("reaped %d, want 1", n)
		}
		if !r.leased(t, "10.50.0.9") {
			t.Error("a lease in a pool that is not the network's was released")
		}
	})
}

// noPools is a lease book that holds no pool, as for a network on
// Docker's IPAM.
type noPools struct{ LeaseBook }

func (noPools) PoolOf(netip.Prefix) (string, bool) { return "", false }
