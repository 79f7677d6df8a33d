package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mynet/mynet/api"
)

var twoEndpoints = &api.PortsAnswer{Endpoints: []api.EndpointPorts{
	{EndpointID: "1a2b3c4d5e6f7a8b", NetworkID: "9f8e7d6c5b4a3210", Address: "10.50.0.2", Ports: []api.PublishedPort{
		{Proto: "udp", Port: 53, PortEnd: 53, HostIP: "127.0.0.1", HostPort: 5353},
		{Proto: "tcp", Port: 8000, PortEnd: 8002, HostIP: "0.0.0.0", HostPort: 9000},
		{Proto: "tcp", Port: 80, PortEnd: 80, HostIP: "0.0.0.0", HostPort: 32768},
	}},
	{EndpointID: "2b", NetworkID: "9f8e7d6c5b4a3210", Address: "10.50.0.3", Address6: "fd00::3", Ports: []api.PublishedPort{
		{Proto: "tcp", Port: 80, PortEnd: 80, HostIP: "::", HostPort: 8080},
		{Proto: "tcp", Port: 80, PortEnd: 80, HostIP: "0.0.0.0", HostPort: 8080},
		{Proto: "udp", Port: 53, PortEnd: 53, HostIP: "::1", HostPort: 5353},
	}},
}}

func TestPrintPorts(t *testing.T) {
	var b bytes.Buffer
	printPorts(&b, twoEndpoints, false)
	want := `endpoint 1a2b3c4d5e6f (network 9f8e7d6c5b4a, 10.50.0.2):
53/udp -> 127.0.0.1:5353
80/tcp -> 0.0.0.0:32768
8000/tcp -> 0.0.0.0:9000
8001/tcp -> 0.0.0.0:9001
8002/tcp -> 0.0.0.0:9002
endpoint 2b (network 9f8e7d6c5b4a, 10.50.0.3, fd00::3):
53/udp -> [::1]:5353
80/tcp -> 0.0.0.0:8080
80/tcp -> [::]:8080
`
	if b.String() != want {
		t.Errorf("printPorts:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printPorts(&b, &api.PortsAnswer{Endpoints: twoEndpoints.Endpoints[1:]}, true)
	if b.String() != "53/udp -> [::1]:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n" {
		t.Errorf("one container: %q, want docker port's lines only", b.String())
	}
}

func TestPrintPort(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := printPort(&out, &errOut, twoEndpoints, "8001"); code != 0 || out.String() != "0.0.0.0:9001\n" {
		t.Errorf("port 8001: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := printPort(&out, &errOut, twoEndpoints, "53/udp"); code != 0 || out.String() != "127.0.0.1:5353\n[::1]:5353\n" {
		t.Errorf("port 53/udp: %d %q", code, out.String())
	}
	if code := printPort(&out, &errOut, twoEndpoints, "53"); code != 1 || !strings.Contains(errOut.String(), "no public port '53/tcp' published") {
		t.Errorf("port 53/tcp: %d %q", code, errOut.String())
	}
}

// A container is resolved to its endpoints and a network to its ID with
// the docker CLI; anything docker does not know is an ID prefix.
func TestResolveSelector(t *testing.T) {
	dir := t.TempDir()
	fakeDocker := filepath.Join(dir, "docker")
	script := `#!/bin/sh
case "$1 $5" in
"container web") echo "ep1 ep2 " ;;
"network front") echo "net1" ;;
*) echo "Error: No such object" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(fakeDocker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sel, docker string
		want        string
		single      bool
	}{
		{"", fakeDocker, "{Endpoints:[] Prefixes:[]}", false},
		{"web", fakeDocker, "{Endpoints:[ep1 ep2] Prefixes:[]}", true},
		{"front", fakeDocker, "{Endpoints:[] Prefixes:[net1]}", false},
		{"1a2b", fakeDocker, "{Endpoints:[] Prefixes:[1a2b]}", false},
		{"web", "", "{Endpoints:[] Prefixes:[web]}", false},
		{"web", filepath.Join(dir, "missing"), "{Endpoints:[] Prefixes:[web]}", false},
	} {
		q, single := resolveSelector(t.Context(), tc.docker, tc.sel)
		if got := strings.ReplaceAll(fmtQuery(q), "[]string(nil)", "[]"); got != tc.want || single != tc.single {
			t.Errorf("resolveSelector(%q, %q) = %s, %v; want %s, %v", tc.docker, tc.sel, got, single, tc.want, tc.single)
		}
	}
}

func fmtQuery(q *api.PortsQuery) string {
	return "{Endpoints:[" + strings.Join(q.Endpoints, " ") + "] Prefixes:[" + strings.Join(q.Prefixes, " ") + "]}"
}
