package driver

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/ifname"
)

// Option keys, under the names Docker's bridge driver uses, so that a user
// switching `-d bridge` to `-d mynet` keeps their `-o` flags.
const (
	optBridgeName  = "com.docker.network.bridge.name"
	optMTU         = "com.docker.network.driver.mtu"
	optMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	optICC         = "com.docker.network.bridge.enable_icc"
	optHostBinding = "com.docker.network.bridge.host_binding_ipv4"
	optGWModeV4    = "com.docker.network.bridge.gateway_mode_ipv4"
	optGWModeV6    = "com.docker.network.bridge.gateway_mode_ipv6"
	optInhibitV4   = "com.docker.network.bridge.inhibit_ipv4"
	optTrusted     = "com.docker.network.bridge.trusted_host_interfaces"
	optHostIPv4    = "com.docker.network.host_ipv4"
	optHostIPv6    = "com.docker.network.host_ipv6"
	optIfacePrefix = "com.docker.network.container_iface_prefix"
	// optAllowHostSubnet lets a network's subnet overlap one the host is
	// connected to on another interface (see checkHostSubnets).
	optAllowHostSubnet = "mynet.allow_host_subnet"

	// Keys of the CreateNetwork options map itself (not user -o options).
	keyGeneric  = "com.docker.network.generic"
	keyIPv6     = "com.docker.network.enable_ipv6"
	keyInternal = "com.docker.network.internal"
	keyIPv4     = "com.docker.network.enable_ipv4" // engine 28+
)

// Namespaces whose keys mynet owns: an unknown key there is a user's typo
// and is rejected; anything else is a generic Docker label and is ignored.
var ownedPrefixes = []string{"com.docker.network.bridge.", "com.docker.network.driver.", "mynet."}

// dockerGeneric are keys the engine itself reads from -o for every driver;
// they do not concern mynet and are not logged as ignored.
var dockerGeneric = []string{keyIPv4, keyIPv6, "com.docker.network.advertise_addr_nmsgs", "com.docker.network.advertise_addr_ms"}

var knownOptions = []string{optBridgeName, optMTU, optMasquerade, optICC, optHostBinding,
	optGWModeV4, optGWModeV6, optInhibitV4, optTrusted, optHostIPv4, optHostIPv6, optIfacePrefix, optAllowHostSubnet}

// gatewayModes are the accepted values of the gateway_mode options.
var gatewayModes = []string{firewall.ModeNAT, firewall.ModeNATUnprotected, firewall.ModeRouted, firewall.ModeIsolated}

const (
	defaultIfacePrefix = "eth"
	defaultMTU         = 1500
	minMTU             = 68   // the IPv4 minimum (RFC 791)
	minMTU6            = 1280 // the IPv6 minimum (RFC 8200)
	maxMTU             = 65535
)

// netOptions is the validated form of a network's options.
type netOptions struct {
	BridgeName  string     `json:"bridge_name,omitempty"`
	MTU         int        `json:"mtu"`
	Masquerade  bool       `json:"masquerade"`
	ICC         bool       `json:"icc"`
	HostBinding netip.Addr `json:"host_binding_ipv4,omitzero"`
	Internal    bool       `json:"internal"`
	IPv6        bool       `json:"ipv6"`
	// IPv4 is false only for IPv6-only networks (--ipv4=false, engine 28+).
	IPv4        bool       `json:"ipv4"`
	GWModeV4    string     `json:"gateway_mode_ipv4"`
	GWModeV6    string     `json:"gateway_mode_ipv6"`
	InhibitIPv4 bool       `json:"inhibit_ipv4,omitempty"`
	Trusted     []string   `json:"trusted_host_interfaces,omitempty"`
	HostIPv4    netip.Addr `json:"host_ipv4,omitzero"`
	HostIPv6    netip.Addr `json:"host_ipv6,omitzero"`
	IfacePrefix string     `json:"container_iface_prefix"`
	// AllowHostSubnet: the subnet may overlap a connected subnet of the host.
	AllowHostSubnet bool `json:"allow_host_subnet,omitempty"`
	// Ignored lists generic labels that do not apply to mynet.
	Ignored []string `json:"-"`
}

// parseNetworkOptions validates the CreateNetwork options map. Each error
// names the option, the bad value and what is accepted, because the user
// sees nothing but this text.
func parseNetworkOptions(raw map[string]any) (netOptions, error) {
	o := netOptions{MTU: defaultMTU, Masquerade: true, ICC: true, IPv4: true,
		GWModeV4: firewall.ModeNAT, GWModeV6: firewall.ModeNAT, IfacePrefix: defaultIfacePrefix}
	var err error
	if _, set := raw[keyIPv4]; set {
		if o.IPv4, err = boolField(raw, keyIPv4); err != nil {
			return o, err
		}
	}
	if o.Internal, err = boolField(raw, keyInternal); err != nil {
		return o, err
	}
	if o.IPv6, err = boolField(raw, keyIPv6); err != nil {
		return o, err
	}
	generic, err := genericOptions(raw[keyGeneric])
	if err != nil {
		return o, err
	}
	for _, k := range sortedKeys(generic) {
		if err := o.set(k, generic[k]); err != nil {
			return o, err
		}
	}
	return o, nil
}

func (o *netOptions) set(key, val string) error {
	var err error
	switch key {
	case optBridgeName:
		o.BridgeName, err = val, validBridgeOption(val)
	case optMTU:
		o.MTU, err = parseMTU(val)
	case optMasquerade:
		o.Masquerade, err = parseBool(val)
	case optICC:
		o.ICC, err = parseBool(val)
	case optHostBinding:
		o.HostBinding, err = parseHostBinding(val)
	case optHostIPv4:
		o.HostIPv4, err = parseAddr(val, true)
	case optHostIPv6:
		o.HostIPv6, err = parseAddr(val, false)
	case optGWModeV4:
		o.GWModeV4, err = parseGatewayMode(val)
	case optGWModeV6:
		o.GWModeV6, err = parseGatewayMode(val)
	case optInhibitV4:
		o.InhibitIPv4, err = parseBool(val)
	case optTrusted:
		o.Trusted, err = parseIfaceList(val)
	case optIfacePrefix:
		o.IfacePrefix, err = val, validIfacePrefix(val)
	case optAllowHostSubnet:
		o.AllowHostSubnet, err = parseBool(val)
	default:
		if owned(key) {
			return fmt.Errorf("unknown option %q: mynet accepts %s", key, strings.Join(knownOptions, ", "))
		}
		if !slices.Contains(dockerGeneric, key) {
			o.Ignored = append(o.Ignored, key)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("option %s=%q: %w", key, val, err)
	}
	return nil
}

func parseAddr(s string, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Is4() != v4 || a.Zone() != "" {
		if v4 {
			return a, fmt.Errorf("want an IPv4 address")
		}
		return a, fmt.Errorf("want an IPv6 address")
	}
	return a, checkHostAddr(a)
}

// parseHostBinding reads host_binding_ipv4, which despite its name may
// hold an IPv6 address (:: publishes default bindings on IPv6 only).
func parseHostBinding(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return a, fmt.Errorf("want an IPv4 or IPv6 address")
	}
	return a.Unmap(), nil
}

func parseGatewayMode(s string) (string, error) {
	if slices.Contains(gatewayModes, s) {
		return s, nil
	}
	return "", fmt.Errorf("want one of %s", strings.Join(gatewayModes, ", "))
}

// parseIfaceList reads Docker's colon-separated interface list. Each name
// is matched by iptables as given, so a wildcard ("+", "eth+") or a
// negation ("!eth0") would trust every interface or all but one.
func parseIfaceList(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ":") {
		if name == "" {
			continue
		}
		if err := firewall.CheckMatchName(name); err != nil {
			return nil, fmt.Errorf("interface %q: %w", name, err)
		}
		out = append(out, name)
	}
	return out, nil
}

// validBridgeOption checks a user's bridge name as an interface name, then
// against what the firewall refuses (Docker's docker0 and br-*, iptables'
// '+' and '!'), so that a refused name fails here, naming the option,
// before an existing bridge of that name is adopted.
func validBridgeOption(s string) error {
	if err := validIfName(s); err != nil {
		return err
	}
	return firewall.CheckBridgeName(s)
}

// validIfacePrefix keeps room for the engine's index (eth0 .. eth99) within
// the kernel's name limit.
func validIfacePrefix(s string) error {
	if s == "" || len(s) > maxIfName-2 {
		return fmt.Errorf("want 1 to %d characters", maxIfName-2)
	}
	return validIfName(s)
}

func owned(key string) bool {
	for _, p := range ownedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func parseMTU(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < minMTU || n > maxMTU {
		return 0, fmt.Errorf("want an MTU between %d and %d", minMTU, maxMTU)
	}
	return n, nil
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Errorf("want true or false")
	}
	return b, nil
}

// validIfName applies the kernel's rules for interface names, as bytes:
// see ifname.Check.
func validIfName(s string) error { return ifname.Check(s) }

// boolField reads a boolean the engine sends as JSON true/false; older
// engines and hand-written requests sometimes send strings.
func boolField(raw map[string]any, key string) (bool, error) {
	switch v := raw[key].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		b, err := parseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: %w", key, v, err)
		}
		return b, nil
	default:
		return false, fmt.Errorf("%s: want a boolean, got %v", key, v)
	}
}

// genericOptions turns the engine's `-o` map into strings. The engine sends
// strings; numbers and booleans are accepted too for hand-written requests.
func genericOptions(v any) (map[string]string, error) {
	out := map[string]string{}
	if v == nil {
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object of options, got %T", keyGeneric, v)
	}
	for k, val := range m {
		switch x := val.(type) {
		case string:
			out[k] = x
		case bool, float64, json.Number:
			out[k] = fmt.Sprint(x)
		default:
			return nil, fmt.Errorf("option %s: want a string value, got %T", k, val)
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
