package plugin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// closeBound is how long a test waits for the server to close a
// connection: far above the short timeouts the tests set, far below
// forever.
const closeBound = 10 * time.Second

// A socket another process answers on is refused and keeps serving; the
// second listener never takes it over.
func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mynet.sock")
	first, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Listen(path)
	if err == nil {
		second.Close()
		t.Fatal("a second listener took over a live socket")
	}
	if !errors.Is(err, ErrSocketInUse) || !strings.Contains(err.Error(), "another mynet answers on "+path) {
		t.Errorf("err = %v, want %v naming the path", err, ErrSocketInUse)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := first.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the first listener's socket is gone: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Errorf("the first listener no longer accepts: %v", err)
	}
}

// A socket left by a killed mynet, which nobody answers on, is replaced.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mynet.sock")
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false) // as kill -9 leaves it
	old.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l.Close()
}

// Anything at the socket path that is not a socket is refused and left as
// it was.
func TestListenRefusesNonSocket(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		kind string
	}{
		{"regular file", func(t *testing.T, path string) { write(t, path, "precious") }, "a regular file"},
		{"empty file", func(t *testing.T, path string) { write(t, path, "") }, "a regular file"},
		{"empty directory", func(t *testing.T, path string) { mkdir(t, path) }, "a directory"},
		{"symlink to a file", func(t *testing.T, path string) {
			write(t, path+".target", "precious")
			symlink(t, path+".target", path)
		}, "a symlink"},
		{"dangling symlink", func(t *testing.T, path string) { symlink(t, path+".nowhere", path) }, "a symlink"},
		{"symlink to a stale socket", func(t *testing.T, path string) {
			old, err := net.Listen("unix", path+".real")
			if err != nil {
				t.Fatal(err)
			}
			old.(*net.UnixListener).SetUnlinkOnClose(false)
			old.Close()
			symlink(t, path+".real", path)
		}, "a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mynet.sock")
			tt.make(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Listen(path)
			if err == nil {
				l.Close()
				t.Fatal("listened in its place")
			}
			if !errors.Is(err, ErrNotSocket) || !strings.Contains(err.Error(), tt.kind) {
				t.Errorf("err = %v, want %v saying %s", err, ErrNotSocket, tt.kind)
			}
			after, err := os.Lstat(path)
			if err != nil {
				t.Fatalf("%s removed: %v", tt.name, err)
			}
			if !os.SameFile(before, after) || before.Size() != after.Size() {
				t.Errorf("%s changed", tt.name)
			}
		})
	}
}

// A client that stops half way through a body has its connection closed
// after the read timeout, and the call is not made. A call that runs
// longer than that timeout, its request read, still answers; once it has,
// its idle connection is closed after the idle timeout.
func TestServeTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	calls := make(chan string, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		calls <- r.URL.Path
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = w.Write(body)
	})
	path := serveWith(t, h, WithReadTimeout(timeout), WithIdleTimeout(timeout))

	slow := dial(t, path)
	send(t, slow, "POST /slow HTTP/1.1\r\nHost: mynet\r\nContent-Length: 2\r\n\r\n{}")
	<-entered

	half := dial(t, path)
	start := time.Now()
	send(t, half, "POST /half HTTP/1.1\r\nHost: mynet\r\nContent-Length: 100\r\n\r\n{\"NetworkID\":")
	waitClosed(t, half, "half-sent body")
	t.Logf("half-sent body's connection closed after %v", time.Since(start))

	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("the slow call's answer: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "{}" {
		t.Errorf("slow call answered %d %q", resp.StatusCode, b)
	}
	waitClosed(t, slow, "idle connection")
	close(calls)
	for c := range calls {
		if c != "/slow" {
			t.Errorf("call %s was made", c)
		}
	}
}

// A kept-alive connection the client no longer uses is closed after the
// idle timeout, apart from the read timeout.
func TestServeClosesIdleConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	path := serveWith(t, h, WithIdleTimeout(200*time.Millisecond))
	c := dial(t, path)
	send(t, c, "POST /NetworkDriver.GetCapabilities HTTP/1.1\r\nHost: mynet\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitClosed(t, c, "idle connection")
}

// serveWith serves h with opts on a socket in a temporary directory until
// the test ends and returns the socket's path.
func serveWith(t *testing.T, h http.Handler, opts ...ServeOption) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mynet.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, l, h, opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return path
}

func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitClosed reads c until the server closes it, failing if that takes
// longer than closeBound.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(closeBound))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s still open after %v", what, closeBound)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
