package ipam

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseDefaultPools(t *testing.T) {
	tests := []struct {
		in     string
		want   []string // PoolSpec.String() of each entry
		errHas string   // non-empty: ErrInvalid with this fragment
	}{
		{in: "10.200.0.0/16/24,fd00:6d79:6e65::/48/64", want: []string{"10.200.0.0/16/24", "fd00:6d79:6e65::/48/64"}},
		{in: " 10.200.0.0/16/24 , ,10.201.0.0/16/20,", want: []string{"10.200.0.0/16/24", "10.201.0.0/16/20"}},
		{in: "10.9.0.0/30/30", want: []string{"10.9.0.0/30/30"}},
		{in: "10.200.0.0/16/16", want: []string{"10.200.0.0/16/16"}},
		{in: "", errHas: "is empty"},
		{in: " , ", errHas: "is empty"},
		{in: "10.200.0.0/16", errHas: `default pool "10.200.0.0/16": want base/size`},
		{in: "10.200.0.0/16/24/8", errHas: "want base/size"},
		{in: "10.200.0/16/24", errHas: `base "10.200.0/16" is not a CIDR`},
		{in: "10.200.0.5/16/24", errHas: "base 10.200.0.5/16 is not a network address: use 10.200.0.0/16"},
		{in: "10.200.0.0/16/x", errHas: `size "x" is not a prefix length`},
		{in: "10.200.0.0/16/8", errHas: "size /8 must be between /16 (the base) and /30"},
		{in: "10.200.0.0/16/31", errHas: "size /31 must be between /16 (the base) and /30"},
		{in: "fd00::/48/127", errHas: "and /126"},
		{in: "10.200.0.0/16/24,bogus", errHas: `default pool "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			specs, err := ParseDefaultPools(tt.in)
			if tt.errHas != "" {
				checkErr(t, err, ErrInvalid, tt.errHas)
				return
			}
			checkErr(t, err, nil)
			var got []string
			for _, s := range specs {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestDefaultPoolsRoundTrip pins the built-in list and checks it is valid.
func TestDefaultPoolsRoundTrip(t *testing.T) {
	var ss []string
	for _, s := range DefaultPools {
		ss = append(ss, s.String())
	}
	want := []string{"10.200.0.0/16/24", "10.201.0.0/16/24", "fd6d:796e:6574::/48/64"}
	if !slices.Equal(ss, want) {
		t.Fatalf("DefaultPools = %v; want %v", ss, want)
	}
	parsed, err := ParseDefaultPools("10.200.0.0/16/24,10.201.0.0/16/24,fd6d:796e:6574::/48/64")
	if err != nil || !slices.Equal(parsed, DefaultPools) {
		t.Fatalf("ParseDefaultPools(DefaultPools) = %v, %v", parsed, err)
	}
}

func TestNewRejectsBadDefaultPools(t *testing.T) {
	for _, spec := range []PoolSpec{
		{},
		{Base: netip.MustParsePrefix("10.200.0.5/16"), Size: 24},
		{Base: netip.MustParsePrefix("10.200.0.0/16"), Size: 8},
		{Base: netip.MustParsePrefix("10.200.0.0/16"), Size: 32},
	} {
		_, err := New(newMemStore(), Config{DefaultPools: []PoolSpec{spec}}, testLogger())
		checkErr(t, err, ErrInvalid, "default pool")
	}
}
