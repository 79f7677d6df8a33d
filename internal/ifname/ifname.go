// Package ifname checks network interface names as the kernel takes them.
// The plugin checks the names it is sent, the CLI the names it is given
// before sending them.
package ifname

import (
	"errors"
	"fmt"
)

// MaxLen is IFNAMSIZ (16) less the terminating NUL.
const MaxLen = 15

// Check reports whether name is an interface name the kernel keeps
// byte for byte (dev_valid_name): 1 to 15 bytes, not "." or "..", and only
// printable ASCII other than '/' and ':'. The kernel cuts a name at a NUL
// (netlink's IFLA_IFNAME is a C string), so "docker0\x00" would name
// docker0; control and non-ASCII bytes would make names that logs, JSON
// records (which replace invalid UTF-8) and iptables render differently.
func Check(name string) error {
	if name == "" || len(name) > MaxLen {
		return fmt.Errorf("an interface name must be 1 to %d bytes, got %d", MaxLen, len(name))
	}
	if name == "." || name == ".." {
		return errors.New("an interface name cannot be . or ..")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '/' || c == ':' {
			return fmt.Errorf("an interface name may hold printable ASCII only, without '/', ':' or white space (byte %d is %q)", i, c)
		}
	}
	return nil
}
