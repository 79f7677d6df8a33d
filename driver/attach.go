package driver

// Attachments (`mynet attach`): an endpoint that no engine asked for, for
// a container started with --network none (Docker refuses to connect such
// a container to any network) or any process's network namespace.
//
// The work is split at the namespace boundary. The plugin, asked over its
// socket by the mynet CLI, leases the address from mynet's IPAM (so the
// engine can never hand it to a container), creates the veth pair on the
// bridge with the MAC derived from the address, publishes the ports and
// records the endpoint with origin "attach". The CLI, which resolved the
// container with the Docker CLI (the plugin never calls the Docker API),
// moves the container end into the namespace and configures it there;
// the plugin never enters a container's namespace, so the managed plugin
// needs no CAP_SYS_ADMIN and no access to other processes.
//
// An attachment lives as long as the namespace: when the container stops
// or is removed, its namespace goes, and the kernel deletes the veth pair
// with it. The reaper (ReapLoop) notices the missing host end and releases
// the address, the ports and the record. Docker's own endpoints are never
// reaped this way: the engine removes them itself.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ports"
)

// AddressBook is the part of mynet's IPAM that attachments and prune use;
// *ipam.IPAM fits. Attachments lease through it, like the engine does for
// its endpoints, so one lock decides who gets an address.
type AddressBook interface {
	// PoolOf returns the ID of mynet's pool for subnet, if mynet's IPAM
	// holds one (it does not when the network uses Docker's IPAM).
	PoolOf(subnet netip.Prefix) (string, bool)
	RequestAddress(*ipamapi.RequestAddressRequest) (*ipamapi.RequestAddressResponse, error)
	ReleaseAddress(*ipamapi.ReleaseAddressRequest) error
	// ReleasePool drops a pool with its leases (`mynet prune`).
	ReleasePool(*ipamapi.ReleasePoolRequest) error
}

// UseIPAM lets the driver lease addresses for attachments. Without it,
// attachments are refused.
func (d *Driver) UseIPAM(a AddressBook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = a
}

// attachOption marks mynet's own address requests (the lease's kind is
// then "endpoint", as for the engine's).
const attachOption = "mynet.attach"

// abandonAfter is how long an attachment's container end may stay in the
// host namespace before the reaper takes it for the leftover of a `mynet
// attach` that died between asking the plugin and moving the interface.
const abandonAfter = time.Minute

// Attach creates an attachment: lease, veth pair, record, ports. On
// failure nothing is left: no lease, no link, no record, no rule.
func (d *Driver) Attach(req *api.AttachRequest) (_ *api.AttachAnswer, retErr error) {
	reqs, err := validateAttach(req)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reap(time.Now())
	n, err := d.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	if err := d.checkNotAttached(n, req); err != nil {
		return nil, err
	}
	ep, err := newAttachment(req)
	if err != nil {
		return nil, err
	}
	ep.Ports = reqs
	if err := d.leaseAddresses(n, ep, req); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			d.releaseLeases(ep)
		}
	}()
	if err := d.plumbAttachment(n, ep); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			d.unplumbAttachment(ep)
		}
	}()
	if err := d.publish(n, ep); err != nil {
		return nil, err
	}
	d.log.WithFields(ep.logFields()).WithFields(attachFields(ep.Attach)).Info("container attached")
	return d.attachAnswer(n, ep), nil
}

// validate checks the request before anything is touched and returns its
// port requests.
func validateAttach(r *api.AttachRequest) ([]ports.Request, error) {
	switch {
	case r.NetworkID == "":
		return nil, errors.New("attach: NetworkID is empty")
	case r.Netns == "":
		return nil, errors.New("attach: Netns is empty: name the namespace (e.g. net:[4026532281])")
	}
	if err := checkWho(r); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	bindings := make([]any, len(r.Ports))
	for i, b := range r.Ports {
		bindings[i] = b
	}
	reqs, _, err := portRequestsFrom(map[string]any{keyPortMap: bindings})
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	return reqs, nil
}

// Patterns of the identifying fields the CLI sends: a container's full ID
// (hex), its name as Docker allows names, and the namespace's identity as
// plumb.Identity reads it.
var (
	containerIDPattern   = regexp.MustCompile(`^[0-9a-f]{1,64}$`)
	containerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)
	netnsPattern         = regexp.MustCompile(`^net:\[[0-9]{1,20}\]$`)
)

// checkWho checks what the CLI checked before sending: the route is open
// to anyone who can reach the socket, and these fields end up in the
// record, in logs and in the interface name the CLI creates.
func checkWho(r *api.AttachRequest) error {
	switch {
	case r.PID <= 0:
		return fmt.Errorf("PID %d is not a process ID", r.PID)
	case !netnsPattern.MatchString(r.Netns):
		return fmt.Errorf("namespace %q: want a namespace identity such as net:[4026532281]", r.Netns)
	case r.Container != "" && !containerIDPattern.MatchString(r.Container):
		return fmt.Errorf("container ID %q: want a container's hexadecimal ID", r.Container)
	case r.Name != "" && !containerNamePattern.MatchString(r.Name):
		return fmt.Errorf("container name %q: want a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 255 bytes)", r.Name)
	}
	if err := validIfName(r.Ifname); err != nil {
		return fmt.Errorf("interface name %q: %w", r.Ifname, err)
	}
	return nil
}

// checkNotAttached refuses a second attachment of one namespace to one
// network, as the engine refuses to connect a container twice. Caller
// holds d.mu.
func (d *Driver) checkNotAttached(n *networkState, req *api.AttachRequest) error {
	for _, ep := range d.sortedEndpoints() {
		if ep.Attach != nil && ep.NetworkID == n.ID && ep.Attach.Netns == req.Netns {
			return fmt.Errorf("%s is already attached to network %s (endpoint %s, %s as %s): detach it first",
				attachedWho(ep.Attach), ids.Short(n.ID), ids.Short(ep.ID), ep.Address, ep.Attach.Ifname)
		}
	}
	return nil
}

// newAttachment makes the record of a new attachment, with a random
// endpoint ID of the engine's form (the veth names derive from it).
func newAttachment(req *api.AttachRequest) (*endpointState, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("attach: endpoint ID: %w", err)
	}
	ep := &endpointState{ID: hex.EncodeToString(b[:]), NetworkID: req.NetworkID}
	ep.HostVeth, ep.PeerVeth = vethNames(ep.ID)
	ep.Attach = &api.Attachment{Container: req.Container, Name: req.Name, PID: req.PID, Netns: req.Netns,
		Ifname: req.Ifname, Created: time.Now().UTC()}
	return ep, nil
}

// leaseAddresses leases ep's address in each family the network has, and
// derives the MAC from it as for the engine's endpoints. On failure it
// releases what it leased. Caller holds d.mu.
func (d *Driver) leaseAddresses(n *networkState, ep *endpointState, req *api.AttachRequest) (retErr error) {
	if d.addrs == nil {
		return errors.New("attach: this mynet runs without its IPAM")
	}
	defer func() {
		if retErr != nil {
			d.releaseLeases(ep)
		}
	}()
	var err error
	if ep.Address, ep.Attach.Pool, err = d.lease(n, n.Subnet, req.Address, false, ep.ID); err != nil {
		return err
	}
	if ep.Address6, ep.Attach.Pool6, err = d.lease(n, n.Subnet6, req.Address6, true, ep.ID); err != nil {
		return err
	}
	ip := ep.Address.Addr()
	if !ip.IsValid() {
		// IPv6-only: the low 32 bits of the address play the same role.
		b := ep.Address6.Addr().As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	ep.MAC = macFromIPv4(ip).String()
	return nil
}

// lease leases want (or the next free address) of one family from the
// pool of subnet; nothing when the network lacks that family.
func (d *Driver) lease(n *networkState, subnet netip.Prefix, want string, v6 bool, epID string) (netip.Prefix, string, error) {
	fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
	if !subnet.IsValid() {
		if want != "" {
			return netip.Prefix{}, "", fmt.Errorf("network %s has no %s subnet, so no %s address %s", ids.Short(n.ID), fam, fam, want)
		}
		return netip.Prefix{}, "", nil
	}
	pool, ok := d.addrs.PoolOf(subnet)
	if !ok {
		return netip.Prefix{}, "", fmt.Errorf("network %s does not use mynet's IPAM (its subnet %s is not a mynet pool): the engine could give the address to a container; create the network with --ipam-driver naming mynet", ids.Short(n.ID), subnet)
	}
	if want != "" {
		a, err := netip.ParseAddr(want)
		switch {
		case err != nil || a.Zone() != "" || a.Is6() != v6 || a.Is4In6():
			return netip.Prefix{}, "", fmt.Errorf("address %q is not an %s address", want, fam)
		case !subnet.Contains(a):
			return netip.Prefix{}, "", fmt.Errorf("address %s is outside subnet %s of network %s", a, subnet, ids.Short(n.ID))
		}
	}
	resp, err := d.addrs.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: pool, Address: want,
		Options: map[string]string{attachOption: epID}})
	if err != nil {
		return netip.Prefix{}, "", fmt.Errorf("attach to network %s: %w", ids.Short(n.ID), err)
	}
	p, err := netip.ParsePrefix(resp.Address)
	if err != nil {
		return netip.Prefix{}, "", fmt.Errorf("attach: IPAM answered %q: %w", resp.Address, err)
	}
	return p, pool, nil
}

// releaseLeases gives ep's addresses back to the IPAM. Failures are
// logged: they leave an address leased, never one handed out twice.
func (d *Driver) releaseLeases(ep *endpointState) {
	if err := d.releaseAddresses(ep); err != nil {
		d.log.WithFields(ep.logFields()).WithError(err).Warn("releasing the addresses of an attachment")
	}
}

// releaseAddresses gives ep's addresses back. Releasing a free address is
// not an error (see ipam.ReleaseAddress), so this can be repeated.
func (d *Driver) releaseAddresses(ep *endpointState) error {
	var errs []error
	for _, l := range []struct {
		pool string
		addr netip.Prefix
	}{{ep.Attach.Pool, ep.Address}, {ep.Attach.Pool6, ep.Address6}} {
		if l.pool == "" || !l.addr.IsValid() || d.addrs == nil {
			continue
		}
		if err := d.addrs.ReleaseAddress(&ipamapi.ReleaseAddressRequest{PoolID: l.pool, Address: l.addr.Addr().String()}); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", l.addr.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

// plumbAttachment creates ep's veth pair on n's bridge and records ep.
// On failure nothing is left. Caller holds d.mu.
func (d *Driver) plumbAttachment(n *networkState, ep *endpointState) (retErr error) {
	if err := checkEndpointAddrs(n, ep); err != nil {
		return err
	}
	br, err := d.bridgeOf(n)
	if err != nil {
		return err
	}
	mac, _ := net.ParseMAC(ep.MAC)
	spec := vethSpec{Host: ep.HostVeth, Peer: ep.PeerVeth, Owner: ep.ID, Inst: d.inst, Bridge: br, MTU: n.Options.MTU, MAC: mac,
		Isolated: !n.Options.ICC, Log: d.log}
	if err := createVeth(d.nl, spec); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer func() {
		if retErr != nil {
			warnUndo(d.log, ep.logFields(), "delete the attachment's veth pair", removeVeth(d.nl, ep.HostVeth, ep.PeerVeth))
		}
	}()
	if err := d.st.Put(endpointsBucket, ep.ID, ep); err != nil {
		return fmt.Errorf("record attachment %s: %w", ids.Short(ep.ID), err)
	}
	d.endpoints[ep.ID] = ep
	return nil
}

// unplumbAttachment undoes plumbAttachment after a later step failed: the
// ports (publish leaves none on failure, this covers a partial state
// anyway), the pair and the record. Unlike removeAttachment it is
// best-effort (an undo has no one to return an error to: each failure is
// logged), always forgets the endpoint, and leaves the leases to Attach's
// own undo (releaseLeases). Caller holds d.mu.
func (d *Driver) unplumbAttachment(ep *endpointState) {
	err := errors.Join(d.unpublish(ep), removeVeth(d.nl, ep.HostVeth, ep.PeerVeth), d.st.Delete(endpointsBucket, ep.ID))
	if err != nil {
		d.log.WithFields(ep.logFields()).WithError(err).Warn("undoing a failed attachment")
	}
	delete(d.endpoints, ep.ID)
}

func (d *Driver) attachAnswer(n *networkState, ep *endpointState) *api.AttachAnswer {
	a := &api.AttachAnswer{EndpointID: ep.ID, NetworkID: n.ID, Bridge: n.Bridge, Veth: ep.PeerVeth,
		MAC: ep.MAC, MTU: n.Options.MTU, Ports: ep.published().Ports}
	if ep.Address.IsValid() {
		a.Address = ep.Address.String()
	}
	if ep.Address6.IsValid() {
		a.Address6 = ep.Address6.String()
	}
	a.Gateway, a.Gateway6 = n.joinGateways()
	return a
}

// Detach removes the attachments req names. Naming none that exists is
// an error (ErrNotFound), so a typo does not look like success; the CLI's
// rollback by endpoint ID ignores it.
func (d *Driver) Detach(req *api.DetachRequest) (*api.DetachAnswer, error) {
	if req.EndpointID == "" && req.Container == "" && req.Netns == "" {
		return nil, errors.New("detach: name an endpoint, a container or a namespace")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reap(time.Now())
	ans := &api.DetachAnswer{Endpoints: []api.EndpointInfo{}}
	var errs []error
	for _, ep := range d.sortedEndpoints() {
		if !detachSelects(req, ep) {
			continue
		}
		info := d.endpointInfo(ep)
		if err := d.removeAttachment(ep); err != nil {
			errs = append(errs, err)
			continue
		}
		d.log.WithFields(ep.logFields()).WithFields(attachFields(ep.Attach)).Info("container detached")
		ans.Endpoints = append(ans.Endpoints, info)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(ans.Endpoints) == 0 {
		return nil, fmt.Errorf("no attachment of %s on network %s: %w", detachWhat(req), ids.Short(req.NetworkID), ErrNotFound)
	}
	return ans, nil
}

func detachSelects(r *api.DetachRequest, ep *endpointState) bool {
	if ep.Attach == nil || r.NetworkID != "" && ep.NetworkID != r.NetworkID {
		return false
	}
	return r.EndpointID != "" && ep.ID == r.EndpointID ||
		r.Container != "" && ep.Attach.Container == r.Container ||
		r.Netns != "" && ep.Attach.Netns == r.Netns
}

func detachWhat(r *api.DetachRequest) string {
	switch {
	case r.EndpointID != "":
		return "endpoint " + ids.Short(r.EndpointID)
	case r.Container != "":
		return "container " + ids.Short(r.Container)
	}
	return "namespace " + r.Netns
}

// removeAttachment unpublishes ep's ports, deletes the pair, releases the
// addresses, then drops the record: removeEndpoint plus the leases, which
// mynet took for the attachment where the engine takes an endpoint's. A failure keeps the record, so a later
// detach or reap can finish: the address stays leased until the pair is
// gone, and is never released while the record could still be retried.
// Caller holds d.mu.
func (d *Driver) removeAttachment(ep *endpointState) error {
	if err := d.unpublish(ep); err != nil {
		return fmt.Errorf("detach endpoint %s: %w", ids.Short(ep.ID), err)
	}
	if err := removeVeth(d.nl, ep.HostVeth, ep.PeerVeth); err != nil {
		return fmt.Errorf("detach endpoint %s: %w", ids.Short(ep.ID), err)
	}
	if err := d.releaseAddresses(ep); err != nil {
		return fmt.Errorf("detach endpoint %s: %w", ids.Short(ep.ID), err)
	}
	if err := d.st.Delete(endpointsBucket, ep.ID); err != nil {
		return fmt.Errorf("detach endpoint %s: %w", ids.Short(ep.ID), err)
	}
	delete(d.endpoints, ep.ID)
	return nil
}

func attachedWho(a *api.Attachment) string {
	switch {
	case a.Name != "":
		return "container " + a.Name
	case a.Container != "":
		return "container " + ids.Short(a.Container)
	}
	return fmt.Sprintf("process %d's namespace %s", a.PID, a.Netns)
}

func attachFields(a *api.Attachment) logrus.Fields {
	f := logrus.Fields{"pid": a.PID, "netns": a.Netns, "ifname": a.Ifname}
	if a.Container != "" {
		f["container"] = ids.Short(a.Container)
	}
	if a.Name != "" {
		f["name"] = a.Name
	}
	return f
}
