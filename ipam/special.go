package ipam

import "net/netip"

// specialRange is an address block that cannot be a bridge network's
// subnet: the kernel routes it specially or drops it as martian, or it is
// the host's own (RFC 6890).
type specialRange struct {
	prefix netip.Prefix
	what   string
}

var specialRanges = []specialRange{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791), not routable`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback: its rules would catch the host's own loopback traffic"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, with the broadcast address 255.255.255.255"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped addresses, which are IPv4's"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// CheckSubnet refuses a subnet that overlaps a special-purpose range
// (loopback, link-local, multicast, reserved, IPv4-mapped): whatever IPAM
// it came from, no network of containers can live there. The error is
// classified ErrInvalid.
func CheckSubnet(p netip.Prefix) error {
	for _, r := range specialRanges {
		if p.Overlaps(r.prefix) {
			return errorf(ErrInvalid, "subnet %s overlaps %s (%s): choose a private range such as 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or fd00::/8", p, r.prefix, r.what)
		}
	}
	return nil
}
