package driver

import (
	"crypto/sha256"
	"encoding/hex"
)

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
	return bridgePrefix + idPart(networkID, maxIfName-len(bridgePrefix))
}

func vethNames(endpointID string) (host, peer string) {
	return hostVethPrefix + idPart(endpointID, maxIfName-len(hostVethPrefix)),
		peerVethPrefix + idPart(endpointID, maxIfName-len(peerVethPrefix))
}

// idPart is the part of a name that comes from an ID: its first n
// characters when they are lowercase hex, as the engine's IDs are (so
// that names stay what they have always been), else n hex digits of the
// ID's SHA-256. Any other ID from the wire, cut at a byte count, could end
// mid-rune in a name that the JSON record (which replaces invalid UTF-8)
// no longer spells as the kernel does, and could never be deleted after a
// restart; or hold bytes an interface name cannot.
func idPart(id string, n int) string {
	if p := short(id, n); p != "" && isLowerHex(p) {
		return p
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])[:n]
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
