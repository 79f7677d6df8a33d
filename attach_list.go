package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/plugin"
)

// listedEndpoint is an endpoint with the names Docker knows it by, for
// `mynet inspect`.
type listedEndpoint struct {
	driver.EndpointInfo
	NetworkName   string `json:",omitempty"`
	ContainerName string `json:",omitempty"`
}

type listedNetwork struct {
	driver.NetworkInfo
	Name string `json:",omitempty"`
}

// runList prints mynet's endpoints (of one network) as a table or JSON.
// Names come from the docker CLI, best effort: without it, IDs are shown.
func runList(ctx context.Context, c commonFlags, network string, asJSON bool, w io.Writer) error {
	dk := dockerCLI{c.docker}
	q := &driver.EndpointsQuery{}
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
	ans, err := plugin.NewClient(sock).Endpoints(ctx, q)
	if err != nil {
		return err
	}
	nets, eps := nameAll(ctx, dk, ans)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Networks  []listedNetwork
			Endpoints []listedEndpoint
		}{nets, eps})
	}
	printTable(w, eps)
	return nil
}

// nameAll adds Docker's network and container names to the answer, in
// one docker call.
func nameAll(ctx context.Context, dk dockerCLI, ans *driver.EndpointsAnswer) ([]listedNetwork, []listedEndpoint) {
	refs := map[string]*networkRef{}
	if len(ans.Networks) > 0 {
		args := []string{"network", "inspect", "--format", "{{json .}}"}
		for _, n := range ans.Networks {
			args = append(args, n.ID)
		}
		// A network mynet has but the engine forgot fails the whole call;
		// the IDs are shown then.
		out, _ := dk.run(ctx, args...)
		for _, line := range strings.Split(string(out), "\n") {
			r := &networkRef{}
			if json.Unmarshal([]byte(line), r) == nil && r.ID != "" {
				refs[r.ID] = r
			}
		}
	}
	nets := make([]listedNetwork, 0, len(ans.Networks))
	for _, n := range ans.Networks {
		l := listedNetwork{NetworkInfo: n}
		if r := refs[n.ID]; r != nil {
			l.Name = r.Name
		}
		nets = append(nets, l)
	}
	eps := make([]listedEndpoint, 0, len(ans.Endpoints))
	for _, ep := range ans.Endpoints {
		l := listedEndpoint{EndpointInfo: ep}
		if r := refs[ep.NetworkID]; r != nil {
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

func printTable(w io.Writer, eps []listedEndpoint) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tENDPOINT\tORIGIN\tCONTAINER\tIFACE\tADDRESS\tMAC\tVETH\tPORTS")
	for _, ep := range eps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(ep.NetworkName, shortID(ep.NetworkID)),
			shortID(ep.ID), ep.Origin, ep.container(), ep.iface(), ep.addresses(), ep.MAC, ep.HostVeth, ep.ports())
	}
	_ = tw.Flush()
}

// container names the container (and for attachments its PID).
func (ep listedEndpoint) container() string {
	a := ep.Attach
	if a == nil {
		return orDash(ep.ContainerName, "-")
	}
	who := orDash(ep.ContainerName, shortID(a.Container))
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
func publishedLine(p driver.PublishedPort) string {
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
