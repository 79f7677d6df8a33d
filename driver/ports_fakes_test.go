package driver

import (
	"sort"

	"github.com/mynet/mynet/firewall"
)

// The fake firewall's port side: published mappings by their text, bridges
// with port rules, route_localnet per bridge.

func (f *fakeFirewall) EnsurePorts(b firewall.PortBridge, ms []firewall.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPorts != nil {
		return f.failPorts
	}
	if err := f.failing("EnsurePorts"); err != nil {
		return err
	}
	f.init()
	f.portBridges[b.Bridge] = b
	for _, m := range ms {
		f.mappings[m.String()] = m
	}
	return nil
}

func (f *fakeFirewall) RemovePorts(ms []firewall.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("RemovePorts"); err != nil {
		return err
	}
	f.init()
	for _, m := range ms {
		delete(f.mappings, m.String())
	}
	return nil
}

func (f *fakeFirewall) RemoveBridgePorts(b firewall.PortBridge) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("RemoveBridgePorts"); err != nil {
		return err
	}
	f.init()
	delete(f.portBridges, b.Bridge)
	return nil
}

func (f *fakeFirewall) SetRouteLocalnet(bridge string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("SetRouteLocalnet"); err != nil {
		return err
	}
	f.init()
	f.localnet[bridge] = on
	return nil
}

func (f *fakeFirewall) init() {
	if f.mappings == nil {
		f.mappings, f.portBridges, f.localnet = map[string]firewall.Mapping{}, map[string]firewall.PortBridge{}, map[string]bool{}
	}
}

// published lists the mappings in force, sorted.
func (f *fakeFirewall) published() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.mappings {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fixedRange is an ephemeral port range for ports.NewAllocator that does
// not depend on the host's.
func fixedRange(lo, hi uint16) func() (uint16, uint16, error) {
	return func() (uint16, uint16, error) { return lo, hi, nil }
}
