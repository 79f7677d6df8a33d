package driver

import (
	"net"
	"net/netip"
)

// macFromIPv4 derives a locally administered unicast MAC from an IPv4
// address (02:42:a.b.c.d, the scheme Docker's bridge used for years). A
// container restarted with the same --ip then keeps its MAC, so neighbours'
// ARP caches stay valid instead of pointing at a random, vanished MAC.
func macFromIPv4(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
