package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrSocketInUse: something answers on the socket path, most likely another
// mynet. Taking the path over would leave that one deaf to the engine.
var ErrSocketInUse = errors.New("another mynet answers")

// ErrNotSocket: the socket path names something other than a socket. mynet
// removes only a stale socket, never a file or directory put there.
var ErrNotSocket = errors.New("not a socket")

// Timeouts of the plugin socket's connections. ReadTimeout bounds a whole
// request, headers and body, so a client that stops half way through a
// body does not keep its connection (and a goroutine) for good; the body
// is read after WaitReady's wait, so it leaves room for that wait (up to
// DefaultDeadline) and for the largest body at any speed the engine has.
// IdleTimeout closes kept-alive connections the engine no longer uses.
// There is no write timeout: it runs from the end of the headers, so it
// would cut the answer of a slow call, and every call already answers
// within its deadline (see bounded).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// ServeOption configures Serve.
type ServeOption func(*http.Server)

// WithReadTimeout sets how long reading one request may take; 0 keeps the
// default.
func WithReadTimeout(d time.Duration) ServeOption {
	return func(s *http.Server) {
		if d > 0 {
			s.ReadTimeout = d
			s.ReadHeaderTimeout = min(s.ReadHeaderTimeout, d)
		}
	}
}

// WithIdleTimeout sets how long a kept-alive connection may wait for its
// next request; 0 keeps the default.
func WithIdleTimeout(d time.Duration) ServeOption {
	return func(s *http.Server) {
		if d > 0 {
			s.IdleTimeout = d
		}
	}
}

func newServer(h http.Handler, opts []ServeOption) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout: DefaultReadTimeout, IdleTimeout: DefaultIdleTimeout}
	for _, opt := range opts {
		opt(srv)
	}
	return srv
}

// dialTimeout bounds the check for a live socket: a listener whose backlog
// is full keeps connect waiting, and it is live all the same.
const dialTimeout = 2 * time.Second

// Serve listens on the unix socket path and serves h until ctx is done (see
// ServeListener).
func Serve(ctx context.Context, path string, h http.Handler, opts ...ServeOption) error {
	l, err := Listen(path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, l, h, opts...)
}

// ServeListener serves h on l, a listener from Listen, until ctx is done,
// then stops accepting, lets running requests finish (bounded), and removes
// the socket so the engine does not dial a dead plugin.
func ServeListener(ctx context.Context, l net.Listener, h http.Handler, opts ...ServeOption) error {
	path := l.Addr().String()
	srv := newServer(h, opts)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()

	select {
	case err := <-errc:
		_ = os.Remove(path)
		return fmt.Errorf("serve %s: %w", path, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	_ = os.Remove(path)
	if err != nil {
		return fmt.Errorf("shut down %s: %w", path, err)
	}
	return nil
}

// Listen listens on the unix socket path, taking the place of a stale
// socket left by a killed mynet. A socket something answers on, and
// anything at path that is not a socket, are refused and left alone.
// Mode 0660: only root and the socket's group reach it, like Docker's own.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return l, nil
}

// removeStale removes path if it is a socket nobody answers on. Lstat: a
// symlink is not followed, and refused like any other non-socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("socket path %s is %s, %w; mynet removes only its own stale sockets: move it away or choose another --socket", path, kindOf(fi.Mode()), ErrNotSocket)
	}
	conn, err := net.DialTimeout("unix", path, dialTimeout)
	switch {
	case err == nil:
		_ = conn.Close()
		return fmt.Errorf("%w on %s: stop it first, or give this one another --socket", ErrSocketInUse, path)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w on %s (it accepts no connection within %s, so it is busy, not stale): stop it first, or give this one another --socket", ErrSocketInUse, path, dialTimeout)
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	case !errors.Is(err, syscall.ECONNREFUSED):
		// Not provably stale, so not ours to remove.
		return fmt.Errorf("check socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// kindOf names a file type for the user.
func kindOf(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symlink"
	}
	return "a " + m.Type().String() + " file"
}
