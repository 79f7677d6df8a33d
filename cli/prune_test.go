package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
)

const (
	netLive  = "1111111111111111111111111111111111111111111111111111111111111111"
	netGone  = "2222222222222222222222222222222222222222222222222222222222222222"
	netDflt  = "3333333333333333333333333333333333333333333333333333333333333333"
	epLive   = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	epGone   = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"
	epInGone = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3"
	epDflt   = "a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4"
	atLive   = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"
	atGone   = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	atPID    = "b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3"
	ctrLive  = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
	ctrGone  = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"
)

// records is what mynet holds in the tests: three networks (one the
// engine forgot, one of Docker's IPAM), engine endpoints and attachments
// of every kind.
func records() *api.EndpointsAnswer {
	at := func(id, ctr string) api.EndpointInfo {
		return api.EndpointInfo{ID: id, NetworkID: netLive, Origin: api.OriginAttach, Address: "10.50.0.77/24",
			Attach: &api.Attachment{Container: ctr, PID: 42, Ifname: "eth0"}}
	}
	return &api.EndpointsAnswer{
		Networks: []api.NetworkInfo{
			{ID: netLive, Bridge: "mynet-111111111", Subnet: "10.50.0.0/24"},
			{ID: netGone, Bridge: "mynet-222222222", Subnet: "10.214.2.0/24"},
			{ID: netDflt, Bridge: "mynet-333333333", Subnet: "10.60.0.0/24"},
		},
		Endpoints: []api.EndpointInfo{
			{ID: epLive, NetworkID: netLive, Origin: api.OriginDocker, Address: "10.50.0.2/24"},
			{ID: epGone, NetworkID: netLive, Origin: api.OriginDocker, Address: "10.50.0.3/24",
				Ports: []api.PublishedPort{{Proto: "tcp", Port: 80, PortEnd: 80, HostIP: "0.0.0.0", HostPort: 18990}}},
			{ID: epInGone, NetworkID: netGone, Origin: api.OriginDocker, Address: "10.214.2.5/24"},
			{ID: epDflt, NetworkID: netDflt, Origin: api.OriginDocker, Address: "10.60.0.3/24"},
			at(atLive, ctrLive), at(atGone, ctrGone), at(atPID, ""),
		},
	}
}

// engine is the engine's view in the tests: it forgot netGone, epGone,
// epDflt and ctrGone; an engine network of another driver uses netGone's
// subnet only in the second case below.
func engine() *engineView {
	v := &engineView{networks: map[string]*engineNetwork{}, containers: map[string]bool{ctrLive: true}}
	live := &engineNetwork{ID: netLive, Name: "n1", Driver: "mynet"}
	live.IPAM.Driver = "mynet"
	live.Containers = map[string]struct{ Name, EndpointID string }{ctrLive: {"web", epLive}}
	dflt := &engineNetwork{ID: netDflt, Name: "n3", Driver: "mynet"}
	dflt.IPAM.Driver = "default"
	v.networks[netLive], v.networks[netDflt] = live, dflt
	v.networks["host"] = &engineNetwork{ID: "host", Name: "host", Driver: "host"}
	return v
}

func TestFindStale(t *testing.T) {
	s := findStale(records(), engine())
	wantReq := api.PruneRequest{
		Networks: []api.PruneNetwork{{ID: netGone, ReleasePools: true}},
		Endpoints: []api.PruneEndpoint{
			{ID: epGone, ReleaseLease: true}, // mynet's IPAM: the lease is mynet's
			{ID: epDflt},                     // Docker's IPAM: no lease in mynet
			{ID: atGone},
		},
	}
	if !reflect.DeepEqual(s.req, wantReq) {
		t.Errorf("request %+v\nwant %+v", s.req, wantReq)
	}
	for id, want := range map[string]string{epInGone: "its network is gone", epGone: "no container of the engine", atGone: "no longer has its container c2c2c2c2c2c2"} {
		if !strings.Contains(s.endpoints[id], want) {
			t.Errorf("endpoint %s: why %q, want %q", ids.Short(id), s.endpoints[id], want)
		}
	}
	for _, id := range []string{epLive, atLive, atPID} {
		if why, ok := s.endpoints[id]; ok {
			t.Errorf("endpoint %s the engine has (or never had: --pid) marked stale: %s", ids.Short(id), why)
		}
	}
	if len(s.networks) != 1 || s.networks[netGone] == "" {
		t.Errorf("stale networks %v, want %s only", s.networks, ids.Short(netGone))
	}

	// An engine network (of another driver) with the forgotten network's
	// subnet: its pool is that network's, not to release.
	v := engine()
	other := &engineNetwork{ID: "4444", Name: "n4", Driver: "bridge"}
	other.IPAM.Driver = "mynet"
	other.IPAM.Config = []struct{ Subnet string }{{"10.214.2.0/24"}}
	v.networks[other.ID] = other
	if s := findStale(records(), v); s.req.Networks[0].ReleasePools {
		t.Error("a pool of a subnet an engine network uses would be released")
	}
	// Nothing stale when the engine has everything.
	all := engine()
	all.networks[netGone] = &engineNetwork{ID: netGone}
	all.networks[netDflt].Containers = map[string]struct{ Name, EndpointID string }{"x": {"x", epDflt}}
	all.networks[netLive].Containers["y"] = struct{ Name, EndpointID string }{"y", epGone}
	all.networks[netGone].Containers = map[string]struct{ Name, EndpointID string }{"z": {"z", epInGone}}
	all.containers[ctrGone] = true
	if s := findStale(records(), all); !s.empty() {
		t.Errorf("stale with an engine that has everything: %v %v", s.networks, s.endpoints)
	}
}

// fakeEngine writes a docker CLI answering network ls, network inspect
// and ps from v; fail names a command ("network inspect") that fails.
func fakeEngine(t *testing.T, v *engineView, fail string) string {
	t.Helper()
	dir := t.TempDir()
	var ls, inspect, ps []string
	for id, n := range v.networks {
		ls = append(ls, id)
		b, _ := json.Marshal(n)
		inspect = append(inspect, string(b))
	}
	for id := range v.containers {
		ps = append(ps, id)
	}
	for name, lines := range map[string][]string{"ls": ls, "inspect": inspect, "ps": ps} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
case "$1 $2" in
"` + fail + `") echo "Error: daemon gone" >&2; exit 1 ;;
"network ls") cat ` + dir + `/ls ;;
"network inspect") cat ` + dir + `/inspect ;;
"ps --all") cat ` + dir + `/ps ;;
*) echo "Error: unexpected $*" >&2; exit 1 ;;
esac
`
	p := filepath.Join(dir, "docker")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeMynet serves records on a unix socket and records prune requests,
// answering that it removed what was asked.
type fakeMynet struct {
	sock   string
	mu     sync.Mutex
	pruned []api.PruneRequest
}

func newFakeMynet(t *testing.T, recs *api.EndpointsAnswer) *fakeMynet {
	t.Helper()
	f := &fakeMynet{sock: filepath.Join(t.TempDir(), "mynet.sock")}
	l, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/Mynet.Endpoints", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(recs) })
	mux.HandleFunc("/Mynet.Prune", func(w http.ResponseWriter, r *http.Request) {
		var req api.PruneRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.pruned = append(f.pruned, req)
		f.mu.Unlock()
		ans := api.PruneAnswer{Pools: []string{"10.214.2.0/24"}}
		for _, n := range req.Networks {
			ans.Networks = append(ans.Networks, api.NetworkInfo{ID: n.ID, Bridge: "mynet-222222222", Subnet: "10.214.2.0/24"})
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeMynet) requests() []api.PruneRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pruned
}

// answering makes the question come from a terminal answering answer.
func answering(t *testing.T, answer string) {
	t.Helper()
	oldIn, oldTerm := stdin, stdinIsTerminal
	stdin, stdinIsTerminal = strings.NewReader(answer), func() bool { return true }
	t.Cleanup(func() { stdin, stdinIsTerminal = oldIn, oldTerm })
}

func TestPruneCommand(t *testing.T) {
	prune := func(t *testing.T, f *fakeMynet, dk string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := pruneMain(append([]string{"--socket", f.sock, "--docker", dk}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	dk := fakeEngine(t, engine(), "")
	t.Run("-f", func(t *testing.T) {
		f := newFakeMynet(t, records())
		out, errOut, code := prune(t, f, dk, "-f")
		if code != 0 || len(f.requests()) != 1 || len(f.requests()[0].Networks) != 1 || len(f.requests()[0].Endpoints) != 3 {
			t.Fatalf("exit %d, requests %+v\n%s%s", code, f.requests(), out, errOut)
		}
		for _, want := range []string{"network 222222222222 (bridge mynet-222222222, 10.214.2.0/24): the engine no longer has this network",
			"endpoint a2a2a2a2a2a2 of network 111111111111, 10.50.0.3/24, ports 0.0.0.0:18990->80/tcp: no container of the engine",
			"attachment b2b2b2b2b2b2", "removed network 222222222222", "released pool 10.214.2.0/24"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("no terminal", func(t *testing.T) {
		f := newFakeMynet(t, records())
		old := stdinIsTerminal
		stdinIsTerminal = func() bool { return false }
		defer func() { stdinIsTerminal = old }()
		_, errOut, code := prune(t, f, dk)
		if code != 1 || len(f.requests()) != 0 || !strings.Contains(errOut, `no terminal to ask on (run "mynet prune -f"`) {
			t.Errorf("exit %d, %d requests, stderr %q; want a refusal naming -f and nothing removed", code, len(f.requests()), errOut)
		}
	})
	t.Run("asked, yes", func(t *testing.T) {
		f := newFakeMynet(t, records())
		answering(t, "y\n")
		out, _, code := prune(t, f, dk)
		if code != 0 || len(f.requests()) != 1 || !strings.Contains(out, "Remove them? [y/N]") {
			t.Errorf("exit %d, %d requests:\n%s", code, len(f.requests()), out)
		}
	})
	t.Run("asked, no", func(t *testing.T) {
		f := newFakeMynet(t, records())
		answering(t, "\n")
		_, errOut, code := prune(t, f, dk)
		if code != 1 || len(f.requests()) != 0 || !strings.Contains(errOut, "not removing anything") {
			t.Errorf("exit %d, %d requests, stderr %q", code, len(f.requests()), errOut)
		}
	})
	for _, cmd := range []string{"network ls", "network inspect", "ps --all"} {
		t.Run("docker "+cmd+" fails", func(t *testing.T) {
			f := newFakeMynet(t, records())
			_, errOut, code := prune(t, f, fakeEngine(t, engine(), cmd), "-f")
			if code != 1 || len(f.requests()) != 0 || !strings.Contains(errOut, "daemon gone") || !strings.Contains(errOut, "nothing removed") {
				t.Errorf("exit %d, %d requests, stderr %q; want docker's error and nothing removed", code, len(f.requests()), errOut)
			}
		})
	}
	t.Run("nothing stale", func(t *testing.T) {
		f := newFakeMynet(t, &api.EndpointsAnswer{Networks: records().Networks[:1], Endpoints: records().Endpoints[:1]})
		out, _, code := prune(t, f, dk, "-f")
		if code != 0 || len(f.requests()) != 0 || !strings.Contains(out, "nothing to prune") {
			t.Errorf("exit %d, %d requests:\n%s", code, len(f.requests()), out)
		}
	})
	t.Run("an engine without networks", func(t *testing.T) {
		f := newFakeMynet(t, records())
		_, errOut, code := prune(t, f, fakeEngine(t, &engineView{}, ""), "-f")
		if code != 1 || len(f.requests()) != 0 || !strings.Contains(errOut, "talking to the engine mynet serves") {
			t.Errorf("exit %d, %d requests, stderr %q", code, len(f.requests()), errOut)
		}
	})
}

// mynet ls marks what the engine no longer has, and names the stale
// networks and the fix.
func TestListMarksStale(t *testing.T) {
	f := newFakeMynet(t, records())
	var out bytes.Buffer
	c := commonFlags{socket: f.sock, docker: fakeEngine(t, engine(), "")}
	if err := runList(context.Background(), c, "", false, &out); err != nil {
		t.Fatal(err)
	}
	for word, stale := range map[string]bool{ids.Short(epLive): false, ids.Short(epGone): true, ids.Short(epInGone): true,
		ids.Short(atLive): false, ids.Short(atGone): true, ids.Short(atPID): false} {
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, word) {
				line = l
			}
		}
		if got := strings.Contains(line, "(stale)"); got != stale || line == "" {
			t.Errorf("line of %s %q: stale %v, want %v", word, line, got, stale)
		}
	}
	for _, want := range []string{"stale network 222222222222 (bridge mynet-222222222, 10.214.2.0/24): the engine no longer has this network",
		`stale: 5 records the engine no longer has; "mynet prune" removes them`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls lacks %q:\n%s", want, out.String())
		}
	}
	// Without the docker CLI nothing is marked, and ls says so.
	out.Reset()
	c.docker = fakeEngine(t, engine(), "network ls")
	if err := runList(context.Background(), c, "", false, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "(stale)") || !strings.Contains(out.String(), "stale records not marked") {
		t.Errorf("ls without docker:\n%s", out.String())
	}
}
