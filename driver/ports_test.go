package driver

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mynet/mynet/ports"
)

// binding is one portmap entry as the engine sends it (JSON numbers).
func binding(proto, port int, hostIP string, hostPort, hostPortEnd int) map[string]any {
	return map[string]any{"Proto": float64(proto), "IP": "", "Port": float64(port), "HostIP": hostIP,
		"HostPort": float64(hostPort), "HostPortEnd": float64(hostPortEnd)}
}

func portmap(bs ...map[string]any) map[string]any {
	list := make([]any, len(bs))
	for i, b := range bs {
		list[i] = b
	}
	return map[string]any{keyPortMap: list, keyExposedPorts: []any{}}
}

func TestPortRequestsFrom(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		opts    map[string]any
		want    []ports.Request
		absent  bool
		wantErr string
	}{
		{name: "absent", opts: map[string]any{}, absent: true},
		{name: "empty", opts: portmap(), want: []ports.Request{}},
		{
			name: "fixed, ephemeral, range pick, host address",
			opts: portmap(binding(6, 80, "", 8080, 8080), binding(17, 53, "127.0.0.1", 0, 0), binding(132, 90, "", 5000, 5010)),
			want: []ports.Request{
				{Proto: "tcp", Port: 80, HostPort: 8080},
				{Proto: "udp", HostIP: lo, Port: 53},
				{Proto: "sctp", Port: 90, HostPort: 5000, HostPortEnd: 5010},
			},
		},
		{name: "duplicates dropped", opts: portmap(binding(6, 80, "", 8080, 8080), binding(6, 80, "", 8080, 8080)),
			want: []ports.Request{{Proto: "tcp", Port: 80, HostPort: 8080}}},
		{name: "icmp", opts: portmap(binding(1, 80, "", 0, 0)), wantErr: "IP protocol 1 is not tcp (6), udp (17) or sctp (132)"},
		{name: "port zero", opts: portmap(binding(6, 0, "", 0, 0)), wantErr: "container port must be 1-65535"},
		{name: "range backwards", opts: portmap(binding(6, 80, "", 9000, 8000)), wantErr: "host ports must be 0-65535, first before last"},
		{name: "range without start", opts: portmap(binding(6, 80, "", 0, 8000)), wantErr: "a host port range needs its first port"},
		{name: "bad host address", opts: portmap(binding(6, 80, "localhost", 8080, 8080)), wantErr: `host address "localhost" is not an IP address`},
		{
			name: "ipv6 host addresses",
			opts: portmap(binding(6, 80, "::", 8080, 8080), binding(17, 53, "::1", 5353, 5353), binding(6, 81, "2001:db8::1", 0, 0), binding(132, 90, "::", 9000, 9000)),
			want: []ports.Request{
				{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 80, HostPort: 8080},
				{Proto: "udp", HostIP: netip.IPv6Loopback(), Port: 53, HostPort: 5353},
				{Proto: "tcp", HostIP: netip.MustParseAddr("2001:db8::1"), Port: 81},
				{Proto: "sctp", HostIP: netip.IPv6Unspecified(), Port: 90, HostPort: 9000},
			},
		},
		{name: "ipv4-mapped host address is IPv4", opts: portmap(binding(6, 80, "::ffff:127.0.0.1", 8080, 8080)),
			want: []ports.Request{{Proto: "tcp", HostIP: lo, Port: 80, HostPort: 8080}}},
		{name: "sctp on ::1", opts: portmap(binding(132, 80, "::1", 8080, 8080)), wantErr: "port binding [::1]:8080-8080:80/sctp: sctp cannot be published on ::1"},
		{name: "zone", opts: portmap(binding(6, 80, "fe80::1%eth0", 8080, 8080)), wantErr: "addresses with a zone cannot be published"},
		{name: "not a list", opts: map[string]any{keyPortMap: "80:80"}, wantErr: "want a list of port bindings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := portRequestsFrom(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok == tt.absent {
				t.Errorf("ok = %v, want %v", ok, !tt.absent)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
