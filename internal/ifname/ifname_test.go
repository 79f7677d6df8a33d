package ifname

import "testing"

// Check takes the name as the bytes the kernel will keep: a NUL
// would cut it (docker0\x00 is docker0), and nothing outside printable
// ASCII gets through.
func TestCheck(t *testing.T) {
	for _, ok := range []string{"eth0", "a", "mynet-0123abcde", "br_0.x-y", "vlan@1", "x*y", "a+b"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "0123456789abcdef", "docker0\x00", "\x00", "a/b", "a:b", "a b",
		"a\tb", "a\nb", "a\rb", "a\x7f", "ü", "e\xffth0", "\x01"} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) = nil, want an error", bad)
		}
	}
}
