package cli

// Stale records: mynet's networks, endpoints and attachments that the
// engine no longer has. A `docker network rm` or `docker rm -f` while
// mynet is down fails its driver calls; the engine logs them and forgets
// the objects, and nothing tells the plugin. Only the engine knows what it
// still has, and the plugin must not ask it, so the comparison happens
// here, in the CLI, with the docker CLI.
//
// What "the engine has" means:
//   - a network: its ID is among `docker network ls`'s, of any driver (IDs
//     are the engine's own, so a match is the same network);
//   - an engine endpoint, of a network the engine has: its ID is the
//     EndpointID of one of the network's containers in `docker network
//     inspect` (the engine lists an endpoint from its container's start to
//     its stop, when it deletes it);
//   - an attachment to a container: the container is among `docker ps
//     -a`'s. An attachment to a process's namespace (--pid) was never the
//     engine's; the plugin's reaper removes it when the namespace goes.
// Anything in a network the engine forgot is stale with it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
)

// engineNetwork is a network as `docker network inspect` shows it, with
// what the comparison needs.
type engineNetwork struct {
	ID     string `json:"Id"`
	Name   string
	Driver string
	IPAM   struct {
		Driver string
		Config []struct{ Subnet string }
	}
	Containers map[string]struct{ Name, EndpointID string }
}

// engineView is what the engine has, as the docker CLI listed it.
type engineView struct {
	networks map[string]*engineNetwork // every network, by ID
	// containers holds the IDs of every container; nil when not asked
	// (no attachment names a container).
	containers map[string]bool
}

// readEngine lists the engine's networks (and, if needContainers, its
// containers). Any docker failure is an error: a partial view would make
// live records look stale.
func readEngine(ctx context.Context, dk dockerCLI, needContainers bool) (*engineView, error) {
	out, err := dk.run(ctx, "network", "ls", "--no-trunc", "--quiet")
	if err != nil {
		return nil, fmt.Errorf("listing the engine's networks: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		// Every engine has at least "host" and "none".
		return nil, errors.New("the engine lists no network at all, not even host and none: is the docker CLI talking to the engine mynet serves?")
	}
	v := &engineView{networks: map[string]*engineNetwork{}}
	if out, err = dk.run(ctx, append([]string{"network", "inspect", "--format", "{{json .}}"}, ids...)...); err != nil {
		return nil, fmt.Errorf("inspecting the engine's networks (one may have been removed meanwhile: try again): %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n := &engineNetwork{}
		if err := json.Unmarshal([]byte(line), n); err != nil {
			return nil, fmt.Errorf("reading docker network inspect's answer: %w", err)
		}
		if n.ID == "" {
			return nil, fmt.Errorf("docker network inspect answered a network without an ID: %q", line)
		}
		v.networks[n.ID] = n
	}
	if len(v.networks) != len(ids) {
		return nil, fmt.Errorf("docker network inspect described %d of the %d networks listed: try again", len(v.networks), len(ids))
	}
	if !needContainers {
		return v, nil
	}
	if out, err = dk.run(ctx, "ps", "--all", "--no-trunc", "--quiet"); err != nil {
		return nil, fmt.Errorf("listing the engine's containers: %w", err)
	}
	v.containers = map[string]bool{}
	for _, id := range strings.Fields(string(out)) {
		v.containers[id] = true
	}
	return v, nil
}

// namesContainers reports whether any attachment in ans names a
// container, which readEngine then has to list.
func namesContainers(ans *api.EndpointsAnswer) bool {
	for _, ep := range ans.Endpoints {
		if ep.Attach != nil && ep.Attach.Container != "" {
			return true
		}
	}
	return false
}

// staleSet is what of mynet's records the engine no longer has, and the
// request that removes it.
type staleSet struct {
	networks  map[string]string // stale network ID -> why
	endpoints map[string]string // stale endpoint ID -> why
	req       api.PruneRequest
}

func (s *staleSet) empty() bool { return len(s.networks) == 0 && len(s.endpoints) == 0 }

// findStale compares mynet's records with the engine's view. It is pure:
// the records were read before the engine's view, so a record the engine
// made after its listing cannot be in it (the plugin also refuses young
// records).
func findStale(ans *api.EndpointsAnswer, v *engineView) *staleSet {
	s := &staleSet{networks: map[string]string{}, endpoints: map[string]string{}}
	subnets := v.subnets()
	for _, n := range ans.Networks {
		if v.networks[n.ID] != nil {
			continue
		}
		s.networks[n.ID] = "the engine no longer has this network"
		s.req.Networks = append(s.req.Networks, api.PruneNetwork{ID: n.ID, ReleasePools: !subnets[n.Subnet] && !subnets[n.Subnet6]})
	}
	for _, ep := range ans.Endpoints {
		n := v.networks[ep.NetworkID]
		if why := endpointStale(ep, n, v); why != "" {
			s.endpoints[ep.ID] = why
			if n != nil { // else removed with its network
				s.req.Endpoints = append(s.req.Endpoints, api.PruneEndpoint{ID: ep.ID, ReleaseLease: ep.Attach == nil && n.mynetIPAM()})
			}
		}
	}
	return s
}

// endpointStale says why the engine no longer has ep, or "". n is ep's
// network as the engine has it, nil if it has not.
func endpointStale(ep api.EndpointInfo, n *engineNetwork, v *engineView) string {
	switch {
	case n == nil:
		return "its network is gone from the engine"
	case ep.Attach != nil && ep.Attach.Container != "" && v.containers != nil && !v.containers[ep.Attach.Container]:
		return "the engine no longer has its container " + ids.Short(ep.Attach.Container)
	case ep.Attach != nil:
		return ""
	}
	for _, c := range n.Containers {
		if c.EndpointID == ep.ID {
			return ""
		}
	}
	return "no container of the engine has this endpoint"
}

// subnets are the subnets of every network the engine has ("" excluded):
// a pool of one of them is not a forgotten network's to release.
func (v *engineView) subnets() map[string]bool {
	out := map[string]bool{}
	for _, n := range v.networks {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				out[p.Masked().String()] = true
			}
		}
	}
	delete(out, "")
	return out
}

// mynetIPAM reports whether n takes its addresses from the plugin that
// drives it (mynet as IPAM too), so that its endpoints' leases are
// mynet's to release.
func (n *engineNetwork) mynetIPAM() bool {
	return n.IPAM.Driver != "" && n.IPAM.Driver != "default" && n.IPAM.Driver == n.Driver
}
