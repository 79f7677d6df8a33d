package driver

// Kernel object names are derived from Docker's IDs so that a restarted
// mynet finds the objects it made without a lookup table, and so that an
// operator can tell mynet's links apart from Docker's (docker0, br-*, veth*).
const (
	bridgePrefix   = "mynet-" // + 9 hex = 15, the kernel's IFNAMSIZ-1
	hostVethPrefix = "mnh"    // host end, stays on the bridge
	peerVethPrefix = "mnc"    // container end, moved by the engine
	maxIfName      = 15
)

// short returns at most n leading characters of id; IDs come from the wire
// and are not trusted to be 64 characters long.
func short(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

func bridgeName(networkID string) string {
	return bridgePrefix + short(networkID, maxIfName-len(bridgePrefix))
}

func vethNames(endpointID string) (host, peer string) {
	return hostVethPrefix + short(endpointID, maxIfName-len(hostVethPrefix)),
		peerVethPrefix + short(endpointID, maxIfName-len(peerVethPrefix))
}

// ownerAlias marks a link as created by mynet for one Docker object:
// mynet:<tag>:<id>, where tag names the instance (see Instance.Tag), or the
// legacy mynet:<id> for an empty tag. It is kept in the link's alias
// (IFLA_IFALIAS) so that ownership survives a crash between the kernel
// change and the store write: a bridge carrying our alias is ours to
// delete, one without it was adopted and is never deleted.
func ownerAlias(tag, id string) string {
	if tag == "" {
		return aliasPrefix + id
	}
	return aliasPrefix + tag + ":" + id
}
