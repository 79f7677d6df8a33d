package plugin

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
)

// realStack serves mynet's real driver (on a fake kernel) and IPAM, over
// one store, on a unix socket, with network n1abc on 10.50.0.0/24. The
// socket accepts connections when it returns; the server stops with the
// test.
func realStack(t *testing.T, opts ...Option) (*driver.Driver, *ipam.IPAM, string) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	st := fake.NewStore()
	k := fake.NewKernel()
	d, err := driver.New(k, fake.Firewall{}, nil, st, entry, driver.WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	am, err := ipam.New(st, ipam.Config{}, entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(&network.CreateNetworkRequest{NetworkID: "n1abc", IPv4Data: []*network.IPAMData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}}}); err != nil {
		t.Fatal(err)
	}
	return d, am, serveTest(t, NewHandler(d, am, entry, opts...))
}

// serveTest serves h on a new unix socket until the test ends and returns
// the socket's path once it accepts connections.
func serveTest(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mynet.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, h) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("serving on %s: %v", sock, err)
		}
	}
}

// A container publishing every tcp and udp port (131,070 bindings, 14 MB a
// request) starts within the calls' deadline: CreateEndpoint, Join and
// Program each carry all the bindings. Dropping duplicate bindings took a
// scan per binding, 30 s a call for this. The race detector slows the
// decoding about tenfold, and the deadline with it.
func TestFullPortRangeWithinDeadline(t *testing.T) {
	_, _, sock := realStack(t, WithDeadline(raceSlowdown*DefaultDeadline))
	opts := portOptions(6, 17)
	ids := `"NetworkID":"n1abc","EndpointID":"e1e2e3e4e5e6e7e8e9"`
	for _, c := range []struct{ path, body string }{
		{"/NetworkDriver.CreateEndpoint", `{` + ids + `,"Interface":{"Address":"10.50.0.2/24"},"Options":` + opts + `}`},
		{"/NetworkDriver.Join", `{` + ids + `,"SandboxKey":"/run/netns/full","Options":` + opts + `}`},
		{"/NetworkDriver.ProgramExternalConnectivity", `{` + ids + `,"Options":` + opts + `}`},
	} {
		start := time.Now()
		code, answer := postSocket(t, sock, c.path, c.body)
		t.Logf("%s: %d in %v", c.path, code, time.Since(start).Round(time.Millisecond))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.path, code, answer)
		}
	}
}

// postSocket posts body to path on the unix socket sock.
func postSocket(t *testing.T, sock, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Post("http://mynet"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The driver serves every private route: a method that drifted from its
// interface would silently drop the route from NewHandler.
var (
	_ PortsQuerier = (*driver.Driver)(nil)
	_ Attacher     = (*driver.Driver)(nil)
	_ Pruner       = (*driver.Driver)(nil)
)
