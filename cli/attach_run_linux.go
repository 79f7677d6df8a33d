package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/internal/plumb"
)

// target is the namespace to attach: a container's or a process's.
type target struct {
	container *containerRef // nil for --pid
	pid       int
	ns        netns.NsHandle
	identity  string // "net:[4026532281]"
}

func (t *target) String() string {
	if t.container != nil {
		return "container " + t.container.Name
	}
	return fmt.Sprintf("process %d", t.pid)
}

func (t *target) close() { _ = t.ns.Close() }

// openTarget resolves the container (or takes --pid) and opens its
// network namespace, refusing one that is the caller's own: the host's.
// The namespace is held open from here on, so the process exiting
// meanwhile cannot make the command configure some other namespace.
func openTarget(ctx context.Context, dk dockerCLI, n *networkRef, o *attachOpts) (*target, error) {
	t := &target{pid: o.pid}
	if o.container != "" {
		c, err := dk.container(ctx, o.container)
		if err != nil {
			return nil, err
		}
		if n != nil {
			if err := c.checkAttachable(n); err != nil {
				return nil, err
			}
		}
		t.container, t.pid = c, c.State.Pid
	}
	ns, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", t.pid))
	if err != nil {
		return nil, fmt.Errorf("%s: its network namespace: %w (has it exited?)", t, err)
	}
	t.ns = ns
	self, err := netns.Get()
	if err != nil {
		t.close()
		return nil, fmt.Errorf("this process's network namespace: %w", err)
	}
	defer self.Close()
	if ns.Equal(self) {
		t.close()
		return nil, fmt.Errorf("%s is in the host's network namespace (this command's): there is nothing to attach", t)
	}
	if t.identity, err = plumb.Identity(ns); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// runAttach: resolve, check, ask the plugin, configure; roll back on
// failure after the plugin answered.
func runAttach(ctx context.Context, o *attachOpts, stdout io.Writer) (retErr error) {
	dk := dockerCLI{o.docker}
	n, err := dk.network(ctx, o.network)
	if err != nil {
		return err
	}
	if err := n.checkMynet(); err != nil {
		return err
	}
	t, err := openTarget(ctx, dk, n, o)
	if err != nil {
		return err
	}
	defer t.close()
	inside, err := netlink.NewHandleAt(t.ns)
	if err != nil {
		return fmt.Errorf("%s: netlink in its namespace: %w", t, err)
	}
	defer inside.Close()
	if err := plumbCheck(inside, t, plumb.Spec{Ifname: o.ifname}); err != nil {
		return err
	}
	sock, err := o.socketFor(ctx, n.Driver)
	if err != nil {
		return err
	}
	cl := NewClient(sock)
	ans, err := cl.Attach(ctx, o.request(n, t))
	if err != nil {
		return notMynet(err, n)
	}
	defer func() {
		if retErr != nil {
			retErr = rollback(cl, ans, retErr)
		}
	}()
	spec, err := o.spec(ans)
	if err != nil {
		return err
	}
	if err := plumbCheck(inside, t, spec); err != nil {
		return err
	}
	host, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer host.Close()
	if err := plumb.Into(host, t.ns, spec); err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	printAttached(stdout, t, n, o, ans)
	return nil
}

// request is the plugin request for o on network n in namespace t.
func (o *attachOpts) request(n *networkRef, t *target) *api.AttachRequest {
	r := &api.AttachRequest{NetworkID: n.ID, Address: o.ip, Address6: o.ip6, PID: t.pid,
		Netns: t.identity, Ifname: o.ifname, Ports: o.ports}
	if t.container != nil {
		r.Container, r.Name = t.container.ID, t.container.Name
	}
	return r
}

// spec is what to set up in the namespace, from the plugin's answer.
func (o *attachOpts) spec(ans *api.AttachAnswer) (plumb.Spec, error) {
	s := plumb.Spec{Veth: ans.Veth, Ifname: o.ifname}
	for _, a := range []string{ans.Address, ans.Address6} {
		if a == "" {
			continue
		}
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return s, fmt.Errorf("mynet answered address %q: %w", a, err)
		}
		s.Addrs = append(s.Addrs, p)
	}
	if o.noDefaultRoute {
		return s, nil
	}
	for _, g := range []string{ans.Gateway, ans.Gateway6} {
		if g == "" {
			continue
		}
		a, err := netip.ParseAddr(g)
		if err != nil {
			return s, fmt.Errorf("mynet answered gateway %q: %w", g, err)
		}
		s.Gateways = append(s.Gateways, a)
	}
	return s, nil
}

// plumbCheck turns plumb.Check's findings into advice.
func plumbCheck(inside *netlink.Handle, t *target, s plumb.Spec) error {
	err := plumb.Check(inside, s)
	switch {
	case errors.Is(err, plumb.ErrNameTaken):
		return fmt.Errorf("%s already has an interface %s: choose another name with --ifname", t, s.Ifname)
	case errors.Is(err, plumb.ErrDefaultRoute):
		return fmt.Errorf("%s: %w: use --no-default-route", t, err)
	case err != nil:
		return fmt.Errorf("%s: %w", t, err)
	}
	return nil
}

// notMynet explains a socket that is not mynet's.
func notMynet(err error, n *networkRef) error {
	if errors.Is(err, ErrNotMynet) {
		return fmt.Errorf("network %s's driver %s is not mynet: %w", n.Name, n.Driver, err)
	}
	return err
}

// rollback asks the plugin to remove the endpoint it made, so a failed
// attach leaves nothing: no lease, no veth, no rule, no record.
func rollback(cl *Client, ans *api.AttachAnswer, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cl.Detach(ctx, &api.DetachRequest{NetworkID: ans.NetworkID, EndpointID: ans.EndpointID})
	if err != nil {
		return fmt.Errorf("%w; rolling back endpoint %s also failed: %v (mynet removes it within a few minutes)", cause, ids.Short(ans.EndpointID), err)
	}
	return cause
}

func printAttached(w io.Writer, t *target, n *networkRef, o *attachOpts, ans *api.AttachAnswer) {
	addrs := strings.TrimSuffix(ans.Address+" "+ans.Address6, " ")
	route := "no default route"
	if gws := strings.TrimSpace(ans.Gateway + " " + ans.Gateway6); gws != "" && !o.noDefaultRoute {
		route = "default route via " + strings.ReplaceAll(gws, " ", " and ")
	}
	fmt.Fprintf(w, "%s attached to network %s: %s %s, MAC %s, %s (endpoint %s)\n",
		t, n.Name, o.ifname, strings.TrimSpace(addrs), ans.MAC, route, ids.Short(ans.EndpointID))
	for _, p := range ans.Ports {
		fmt.Fprintln(w, publishedLine(p))
	}
}

// runDetach asks the plugin to remove the attachments of a container (by
// ID, so even a stopped container's) or of a process's namespace.
func runDetach(ctx context.Context, o *attachOpts, stdout io.Writer) error {
	dk := dockerCLI{o.docker}
	n, err := dk.network(ctx, o.network)
	if err != nil {
		return err
	}
	req := &api.DetachRequest{NetworkID: n.ID}
	what := fmt.Sprintf("process %d", o.pid)
	if o.container != "" {
		c, err := dk.container(ctx, o.container)
		if err != nil {
			return err
		}
		req.Container, what = c.ID, "container "+c.Name
	} else {
		t, err := openTarget(ctx, dk, nil, o)
		if err != nil {
			return err
		}
		req.Netns = t.identity
		t.close()
	}
	sock, err := o.socketFor(ctx, n.Driver)
	if err != nil {
		return err
	}
	ans, err := NewClient(sock).Detach(ctx, req)
	if err != nil {
		return notMynet(err, n)
	}
	for _, ep := range ans.Endpoints {
		fmt.Fprintf(stdout, "%s detached from network %s: %s released, endpoint %s removed\n",
			what, n.Name, strings.TrimSpace(ep.Address+" "+ep.Address6), ids.Short(ep.ID))
	}
	return nil
}
