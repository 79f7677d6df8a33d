package plugin

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
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
func realStack(t *testing.T) (*driver.Driver, *ipam.IPAM, string) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	st := fake.NewStore()
	d, err := driver.New(fake.NewKernel(), fake.Firewall{}, nil, st, entry)
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
	return d, am, serveTest(t, NewHandler(d, am, entry))
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
