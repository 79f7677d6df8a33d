package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Serve listens on the unix socket path and serves h until ctx is done,
// then stops accepting, lets running requests finish (bounded), and removes
// the socket so the engine does not dial a dead plugin.
func Serve(ctx context.Context, path string, h http.Handler) error {
	l, err := listen(path)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	err = srv.Shutdown(shutdownCtx)
	_ = os.Remove(path)
	if err != nil {
		return fmt.Errorf("shut down %s: %w", path, err)
	}
	return nil
}

// listen removes a stale socket left by a killed mynet and listens anew.
// Mode 0660: only root and the socket's group reach it, like Docker's own.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
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
