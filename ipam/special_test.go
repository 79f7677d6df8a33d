package ipam

import (
	"errors"
	"strings"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
)

// Subnets overlapping a special-purpose range are refused with a message
// naming the range; private ones are not, and nothing is recorded for a
// refused one.
func TestRequestPoolRefusesSpecialRanges(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	tests := []struct {
		pool string
		v6   bool
		want string // "" accepted
	}{
		{pool: "127.0.0.0/8", want: "overlaps 127.0.0.0/8 (loopback"},
		{pool: "127.1.0.0/24", want: "overlaps 127.0.0.0/8"},
		{pool: "128.0.0.0/1", want: "subnet 128.0.0.0/1 overlaps 169.254.0.0/16"},
		{pool: "169.254.0.0/24", want: "link-local"},
		{pool: "224.0.0.0/24", want: "multicast"},
		{pool: "240.0.0.0/8", want: "reserved"},
		{pool: "255.255.255.0/24", want: "broadcast"},
		// All-zero is a size request (any free /1, /64), not the range.
		{pool: "0.0.0.0/1", want: "no free IPv4 /1 subnet"},
		{pool: "::1/128", v6: true, want: "too small"},
		{pool: "::/64", v6: true},
		{pool: "::ffff:10.0.0.0/120", v6: true, want: "IPv4-mapped"},
		{pool: "::ffff:0:0/96", v6: true, want: "IPv4-mapped"},
		{pool: "fe80::/64", v6: true, want: "link-local"},
		{pool: "ff02::/64", v6: true, want: "multicast"},
		{pool: "fd00:1::/64", v6: true},
		{pool: "10.77.0.0/24"},
		{pool: "100.64.0.0/24"},
	}
	for _, tt := range tests {
		_, err := m.RequestPool(&api.RequestPoolRequest{Pool: tt.pool, V6: tt.v6})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("pool %s: %v, want it accepted", tt.pool, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("pool %s: %v, want an error containing %q", tt.pool, err, tt.want)
		case tt.want != "" && !strings.HasPrefix(tt.want, "no free") && tt.want != "too small" && !errors.Is(err, ErrInvalid):
			t.Errorf("pool %s: %v, want ErrInvalid", tt.pool, err)
		}
	}
	if got := len(st.keys(poolsBucket)); got != 4 {
		t.Errorf("%d pools recorded, want the 4 accepted", got)
	}
}

func TestCheckSubnetDefaultPools(t *testing.T) {
	for _, s := range []string{"127.0.0.0/8/24", "fe80::/48/64", "128.0.0.0/1/24"} {
		if _, err := ParseDefaultPools(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "overlaps") {
			t.Errorf("default pools %s: %v, want an overlap error", s, err)
		}
	}
}
