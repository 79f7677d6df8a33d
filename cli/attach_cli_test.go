package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mynet/mynet/api"
)

func TestParsePublish(t *testing.T) {
	b := func(proto, port int, ip string, hp, hpe int) api.PortBinding {
		return api.PortBinding{Proto: proto, Port: port, HostIP: ip, HostPort: hp, HostPortEnd: hpe}
	}
	for _, c := range []struct {
		spec string
		want []api.PortBinding
		err  string
	}{
		{"80", []api.PortBinding{b(6, 80, "", 0, 0)}, ""},
		{"8080:80", []api.PortBinding{b(6, 80, "", 8080, 8080)}, ""},
		{"127.0.0.1:8080:80/udp", []api.PortBinding{b(17, 80, "127.0.0.1", 8080, 8080)}, ""},
		{"127.0.0.1::80", []api.PortBinding{b(6, 80, "127.0.0.1", 0, 0)}, ""},
		{"53/SCTP", []api.PortBinding{b(132, 53, "", 0, 0)}, ""},
		{"8000-8010:80", []api.PortBinding{b(6, 80, "", 8000, 8010)}, ""}, // any one of the range
		{"9000-9001:7000-7001", []api.PortBinding{b(6, 7000, "", 9000, 9000), b(6, 7001, "", 9001, 9001)}, ""},
		{"7000-7001", []api.PortBinding{b(6, 7000, "", 0, 0), b(6, 7001, "", 0, 0)}, ""},
		{"[::1]:8080:80", []api.PortBinding{b(6, 80, "::1", 8080, 8080)}, ""},
		{"80/icmp", nil, `protocol "icmp"`},
		{"0", nil, "is not a port"},
		{"65536", nil, "is not a port"},
		{"x:80", nil, "is not a port"},
		{"", nil, "container port: missing"},
		{"80-70", nil, "ends before it starts"},
		{"9000-9002:7000-7001", nil, "different lengths"},
		{"1.2.3.4.5:80:80", nil, "not an IP address"},
		{"a:b:c:d", nil, "want [[HOST_IP:]"},
		{"[::1]8080:80", nil, "followed by ':'"},
	} {
		got, err := parsePublish(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parsePublish(%q) error %v, want one mentioning %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", c.spec, got, err, c.want)
		}
	}
}

func TestParseAttach(t *testing.T) {
	o, err := parseAttach([]string{"n1", "--ip", "10.50.0.77", "vm1", "-p", "8080:80", "--publish", "53/udp", "--ifname", "net0", "--no-default-route"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.network != "n1" || o.container != "vm1" || o.ip != "10.50.0.77" || o.ifname != "net0" || !o.noDefaultRoute || len(o.ports) != 2 {
		t.Errorf("parsed %+v", o)
	}
	o, err = parseAttach([]string{"--pid", "4242", "n1"}, io.Discard)
	if err != nil || o.pid != 4242 || o.container != "" || o.ifname != "eth0" {
		t.Errorf("--pid: %+v, %v", o, err)
	}
	if o, err := parseAttach([]string{"n1", "--", "-odd"}, io.Discard); err != nil || o.container != "-odd" {
		t.Errorf("after --: %+v, %v", o, err)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{nil, "name the network"},
		{[]string{"n1"}, "name the network and one container"},
		{[]string{"n1", "a", "b"}, "name the network and one container"},
		{[]string{"n1", "vm1", "--pid", "3"}, "not both"},
		{[]string{"n1", "--pid", "-3"}, "not a process ID"},
		{[]string{"n1", "vm1", "--ip", "10.50.0"}, "--ip 10.50.0: not an IPv4 address"},
		{[]string{"n1", "vm1", "--ip", "fd00::1"}, "not an IPv4 address"},
		{[]string{"n1", "vm1", "--ip6", "10.0.0.1"}, "not an IPv6 address"},
		{[]string{"n1", "vm1", "--ifname", "a/b"}, "without '/'"},
		{[]string{"n1", "vm1", "--ifname", "sixteen-chars-xx"}, "1 to 15 bytes"},
		{[]string{"n1", "vm1", "--ifname", ".."}, "cannot be . or .."},
		{[]string{"n1", "vm1", "--ifname", "eth0\x00"}, "printable ASCII only"},
		{[]string{"n1", "vm1", "-p", "80/icmp"}, "protocol"},
		{[]string{"n1", "vm1", "--bogus"}, "flag provided but not defined"},
	} {
		_, err := parseAttach(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("parseAttach(%q): %v, want an error mentioning %q", c.args, err, c.err)
		}
	}
}

func TestContainerChecks(t *testing.T) {
	n := &networkRef{ID: "net1", Name: "n1"}
	mk := func(mode string, running bool, pid int, nets ...string) *containerRef {
		c := &containerRef{Name: "vm1"}
		c.HostConfig.NetworkMode, c.State.Running, c.State.Pid, c.State.Status = mode, running, pid, "exited"
		c.NetworkSettings.Networks = map[string]struct{ NetworkID string }{}
		for _, id := range nets {
			c.NetworkSettings.Networks["n1"] = struct{ NetworkID string }{id}
		}
		return c
	}
	for _, c := range []struct {
		c    *containerRef
		want string
	}{
		{mk("none", true, 42), ""},
		{mk("bridge", true, 42, "other"), ""},
		{mk("host", true, 42), "--network host"},
		{mk("container:abc", true, 42), "shares the network namespace of container abc"},
		{mk("none", false, 0), "is not running (exited)"},
		{mk("default", true, 42, "net1"), "already connected to network n1 by Docker"},
	} {
		err := c.c.checkAttachable(n)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s running=%v: %v, want %q", c.c.HostConfig.NetworkMode, c.c.State.Running, err, c.want)
		}
	}
}

func TestNetworkChecks(t *testing.T) {
	mk := func(drv, ipamDrv string) *networkRef {
		n := &networkRef{Name: "n1", Driver: drv}
		n.IPAM.Driver = ipamDrv
		return n
	}
	for _, c := range []struct {
		n    *networkRef
		want string
	}{
		{mk("mynet", "mynet"), ""},
		{mk("mynet:latest", "mynet:latest"), ""},
		{mk("bridge", "default"), "Docker's bridge driver"},
		{mk("mynet", "default"), "Docker's default IPAM"},
		{mk("mynet", "other"), "IPAM driver other"},
	} {
		err := c.n.checkMynet()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s/%s: %v, want %q", c.n.Driver, c.n.IPAM.Driver, err, c.want)
		}
	}
}

// fakeDocker writes a docker CLI that prints out for any command, or
// fails with msg.
func fakeDocker(t *testing.T, out, msg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "docker")
	script := "#!/bin/sh\necho '" + out + "'\n"
	if msg != "" {
		script = "#!/bin/sh\necho 'Error: " + msg + "' >&2\nexit 1\n"
	}
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPluginSocket(t *testing.T) {
	ctx := context.Background()
	id := strings.Repeat("ab", 32)
	sock, err := dockerCLI{fakeDocker(t, id+" true mynet.sock", "")}.pluginSocket(ctx, "mynet:latest")
	if err != nil || sock != "/run/docker/plugins/"+id+"/mynet.sock" {
		t.Errorf("managed: %q, %v", sock, err)
	}
	_, err = dockerCLI{fakeDocker(t, id+" false mynet.sock", "")}.pluginSocket(ctx, "mynet:latest")
	if err == nil || !strings.Contains(err.Error(), "is disabled") {
		t.Errorf("disabled managed plugin: %v", err)
	}
	_, err = dockerCLI{fakeDocker(t, "", "plugin not found")}.pluginSocket(ctx, "nope:latest")
	if err == nil || !strings.Contains(err.Error(), "plugin nope:latest: docker plugin: plugin not found") {
		t.Errorf("unknown managed plugin: %v", err)
	}
	if _, err := (dockerCLI{"docker"}).pluginSocket(ctx, "bridge"); err == nil || !strings.Contains(err.Error(), "Docker's own") {
		t.Errorf("bridge: %v", err)
	}
	if _, err := (dockerCLI{"docker"}).pluginSocket(ctx, "no-such-plugin-here"); err == nil || !strings.Contains(err.Error(), "no-such-plugin-here.sock") {
		t.Errorf("missing legacy socket: %v", err)
	}
	_, err = dockerCLI{fakeDocker(t, "", "No such container: vm9")}.container(ctx, "vm9")
	if err == nil || err.Error() != `container "vm9": docker container: No such container: vm9` {
		t.Errorf("unknown container: %v", err)
	}
}

func TestPrintTable(t *testing.T) {
	eps := []listedEndpoint{
		{EndpointInfo: api.EndpointInfo{ID: "aaaaaaaaaaaaaaaa", NetworkID: "nnnnnnnnnnnnnnnn", Origin: "docker", Address: "10.50.0.2/24",
			MAC: "02:42:0a:32:00:02", HostVeth: "mnhaaaaaaaaaaaa"}, NetworkName: "n1", ContainerName: "web"},
		{EndpointInfo: api.EndpointInfo{ID: "bbbbbbbbbbbbbbbb", NetworkID: "nnnnnnnnnnnnnnnn", Origin: "attach", Address: "10.50.0.77/24",
			MAC: "02:42:0a:32:00:4d", HostVeth: "mnhbbbbbbbbbbbb", Attach: &api.Attachment{Name: "vm1", PID: 4242, Ifname: "eth0"},
			Ports: []api.PublishedPort{{Proto: "tcp", Port: 80, PortEnd: 82, HostIP: "0.0.0.0", HostPort: 8080}}}, NetworkName: "n1", ContainerName: "vm1"},
		{EndpointInfo: api.EndpointInfo{ID: "cccc", NetworkID: "nnnnnnnnnnnnnnnn", Origin: "attach", Address: "10.50.0.78/24",
			MAC: "02:42:0a:32:00:4e", HostVeth: "mnhcccc", Attach: &api.Attachment{PID: 7, Ifname: "net1"}}},
	}
	var b bytes.Buffer
	printTable(&b, eps)
	want := `NETWORK       ENDPOINT      ORIGIN  CONTAINER       IFACE  ADDRESS        MAC                VETH             PORTS
n1            aaaaaaaaaaaa  docker  web             -      10.50.0.2/24   02:42:0a:32:00:02  mnhaaaaaaaaaaaa  -
n1            bbbbbbbbbbbb  attach  vm1 (pid 4242)  eth0   10.50.0.77/24  02:42:0a:32:00:4d  mnhbbbbbbbbbbbb  0.0.0.0:8080-8082->80-82/tcp
nnnnnnnnnnnn  cccc          attach  pid 7           net1   10.50.0.78/24  02:42:0a:32:00:4e  mnhcccc          -
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
