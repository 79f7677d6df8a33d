package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
)

// listedEndpoint is an endpoint with the names Docker knows it by, for
// `mynet inspect`; Stale says why the engine no longer has it.
type listedEndpoint struct {
	api.EndpointInfo
	NetworkName   string `json:",omitempty"`
	ContainerName string `json:",omitempty"`
	Stale         string `json:",omitempty"`
}

type listedNetwork struct {
	api.NetworkInfo
	Name  string `json:",omitempty"`
	Stale string `json:",omitempty"`
}

// runList prints mynet's endpoints (of one network) as a table or JSON,
// then the stale networks. Names and staleness come from the docker CLI,
// best effort: without it, IDs are shown and nothing is marked.
func runList(ctx context.Context, c commonFlags, network string, asJSON bool, w io.Writer) error {
	dk := dockerCLI{c.docker}
	q := &api.EndpointsQuery{}
	var driverName string
	if network != "" {
		n, err := dk.network(ctx, network)
		if err != nil {
			return err
		}
		q.Network, driverName = n.ID, n.Driver
	}
	sock, err := c.socketFor(ctx, driverName)
	if err != nil {
		return err
	}
	ans, err := NewClient(sock).Endpoints(ctx, q)
	if err != nil {
		return err
	}
	v, verr := readEngine(ctx, dk, namesContainers(ans))
	if verr != nil {
		v = &engineView{}
	}
	nets, eps := nameAll(ans, v, verr == nil)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Networks  []listedNetwork
			Endpoints []listedEndpoint
		}{nets, eps})
	}
	printTable(w, eps)
	printStaleNetworks(w, nets, eps)
	if verr != nil {
		fmt.Fprintf(w, "(stale records not marked: %v)\n", verr)
	}
	return nil
}

// nameAll adds the engine's network and container names to the answer
// and, when the view is known, marks what the engine no longer has.
func nameAll(ans *api.EndpointsAnswer, v *engineView, known bool) ([]listedNetwork, []listedEndpoint) {
	s := &staleSet{}
	if known {
		s = findStale(ans, v)
	}
	nets := make([]listedNetwork, 0, len(ans.Networks))
	for _, n := range ans.Networks {
		l := listedNetwork{NetworkInfo: n, Stale: s.networks[n.ID]}
		if r := v.networks[n.ID]; r != nil {
			l.Name = r.Name
		}
		nets = append(nets, l)
	}
	eps := make([]listedEndpoint, 0, len(ans.Endpoints))
	for _, ep := range ans.Endpoints {
		l := listedEndpoint{EndpointInfo: ep, Stale: s.endpoints[ep.ID]}
		if r := v.networks[ep.NetworkID]; r != nil {
			l.NetworkName = r.Name
			for _, c := range r.Containers {
				if c.EndpointID == ep.ID {
					l.ContainerName = c.Name
				}
			}
		}
		if ep.Attach != nil && ep.Attach.Name != "" {
			l.ContainerName = ep.Attach.Name
		}
		eps = append(eps, l)
	}
	return nets, eps
}

// printStaleNetworks names the stale networks, which the endpoint table
// does not show when they have no endpoint left, and the fix.
func printStaleNetworks(w io.Writer, nets []listedNetwork, eps []listedEndpoint) {
	stale := 0
	for _, n := range nets {
		if n.Stale != "" {
			fmt.Fprintf(w, "stale network %s (bridge %s%s): %s\n", ids.Short(n.ID), n.Bridge, subnetsText(n.NetworkInfo), n.Stale)
			stale++
		}
	}
	for _, ep := range eps {
		if ep.Stale != "" {
			stale++
		}
	}
	if stale > 0 {
		fmt.Fprintf(w, "stale: %d records the engine no longer has; \"mynet prune\" removes them\n", stale)
	}
}

func printTable(w io.Writer, eps []listedEndpoint) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tENDPOINT\tORIGIN\tCONTAINER\tIFACE\tADDRESS\tMAC\tVETH\tPORTS")
	for _, ep := range eps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(ep.NetworkName, ids.Short(ep.NetworkID)),
			ids.Short(ep.ID), ep.origin(), ep.container(), ep.iface(), ep.addresses(), ep.MAC, ep.HostVeth, ep.ports())
	}
	_ = tw.Flush()
}

// origin is the endpoint's origin, marked when the engine no longer has
// it.
func (ep listedEndpoint) origin() string {
	if ep.Stale != "" {
		return ep.Origin + " (stale)"
	}
	return ep.Origin
}

// container names the container (and for attachments its PID).
func (ep listedEndpoint) container() string {
	a := ep.Attach
	if a == nil {
		return orDash(ep.ContainerName, "-")
	}
	who := orDash(ep.ContainerName, ids.Short(a.Container))
	if who == "" {
		return "pid " + strconv.Itoa(a.PID)
	}
	return who + " (pid " + strconv.Itoa(a.PID) + ")"
}

// iface is the interface name in the container; the engine chooses it
// for its own endpoints and does not say.
func (ep listedEndpoint) iface() string {
	if ep.Attach == nil {
		return "-"
	}
	return ep.Attach.Ifname
}

func (ep listedEndpoint) addresses() string {
	return orDash(strings.TrimSpace(ep.Address+" "+ep.Address6), "-")
}

func (ep listedEndpoint) ports() string {
	var out []string
	for _, p := range ep.Ports {
		out = append(out, publishedLine(p))
	}
	return orDash(strings.Join(out, ","), "-")
}

// publishedLine writes a published run as docker ps does:
// "0.0.0.0:8080->80/tcp", "0.0.0.0:8000-8002->80-82/tcp".
func publishedLine(p api.PublishedPort) string {
	n := p.PortEnd - p.Port
	host, ctr := strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.Port))
	if n > 0 {
		host += "-" + strconv.Itoa(int(p.HostPort+n))
		ctr += "-" + strconv.Itoa(int(p.PortEnd))
	}
	return net.JoinHostPort(p.HostIP, host) + "->" + ctr + "/" + p.Proto // [::]:8080->80/tcp for IPv6
}

func orDash(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
