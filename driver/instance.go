package driver

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/ports"
)

// Instance identifies one running mynet on a host: Name is chosen by the
// operator (the socket's name by default: mynet, mynet-swarm), UUID is
// made with the instance's state file. Both go into every link alias and
// rule comment the instance writes, so two instances side by side, or
// one that lost its state file, never take each other's objects for
// their own. The zero Instance writes the aliases and comments of builds
// before instances existed (mynet:<id>).
type Instance struct {
	Name string
	UUID string
}

// DefaultInstance is the name of an instance serving mynet.sock; legacy
// objects (written before instances existed) are presumed to be an
// instance of this name's.
const DefaultInstance = "mynet"

// maxInstanceName keeps aliases and comments short: a rule comment is
// mynet:<name>:<8 hex>:<bridge>, at most 64 characters with 15-character
// bridges, well inside iptables' 255 and the kernel's 255 for aliases.
const maxInstanceName = 32

// ErrInstanceName marks an instance name mynet cannot use.
var ErrInstanceName = errors.New("invalid instance name")

// CheckInstanceName accepts 1 to 32 of a-z, 0-9 and '-', starting with a
// letter or digit: the name sits between colons in aliases and comments.
func CheckInstanceName(name string) error {
	if name == "" || len(name) > maxInstanceName || name[0] == '-' || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("%w %q: want 1 to %d of a-z, 0-9 and '-', not starting with '-'", ErrInstanceName, name, maxInstanceName)
	}
	return nil
}

// InstanceFromSocket derives the default instance name from the socket the
// instance serves: /run/docker/plugins/mynet-swarm.sock is mynet-swarm,
// the name the engine knows it by.
func InstanceFromSocket(socket string) string {
	return strings.TrimSuffix(filepath.Base(socket), ".sock")
}

// Tag is what the instance writes between "mynet:" and the object's own
// name: <name>:<first 8 hex digits of the UUID>, or "" for the zero
// Instance.
func (i Instance) Tag() string {
	if i.Name == "" && i.UUID == "" {
		return ""
	}
	return i.Name + ":" + short(strings.ReplaceAll(i.UUID, "-", ""), 8)
}

// group is the link group (IFLA_GROUP) the instance's links are created
// in, from the UUID's first 32 bits. Unlike the alias, the kernel takes a
// group in the creating message itself, so a link left by a crash before
// its alias was set is still known as this instance's. 0 (the kernel's
// default group) for the zero Instance: nothing is marked.
func (i Instance) group() uint32 {
	g, err := strconv.ParseUint(short(strings.ReplaceAll(i.UUID, "-", ""), 8), 16, 32)
	if err != nil || g == 0 {
		return 0
	}
	return uint32(g)
}

// aliasPrefix starts every alias mynet writes.
const aliasPrefix = "mynet:"

// alias marks a link as created by this instance for one Docker object.
func (i Instance) alias(id string) string { return ownerAlias(i.Tag(), id) }

// parseTagged splits what mynet writes into aliases and comments,
// mynet:<name>:<uuid8>:<object> or the legacy mynet:<object>, into the
// instance tag ("" for legacy) and the object; ok is false for anything
// else. The format is the firewall's rule comment (aliasPrefix is its
// prefix too).
func parseTagged(s string) (tag, object string, ok bool) { return firewall.ParseLabel(s) }

// tagName is the instance name in a tag; "" for legacy.
func tagName(tag string) string {
	name, _, _ := strings.Cut(tag, ":")
	return name
}

// Option configures a Driver in New.
type Option func(*Driver)

// WithInstance makes the driver write i's identity into its objects and
// touch only objects that carry it (see reconcile). Without it the driver
// behaves as builds before instances did.
func WithInstance(i Instance) Option {
	return func(d *Driver) { d.inst = i }
}

// WithPortReserver makes the driver hold published host ports with r
// instead of sockets on the host (ports.SocketReserver): a fake kernel's
// tests and benchmarks pass one that touches nothing. Ephemeral ports
// still come from the host's range (ports.LocalPortRange).
func WithPortReserver(r ports.Reserver) Option {
	return func(d *Driver) { d.ports = ports.NewAllocator(r, ports.LocalPortRange) }
}
