//go:build e2e

package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Env is one private Docker engine with its namespaces, test image, ext
// server and (started on demand) mynet plugin.
type Env struct {
	Layout  Layout
	Kind    string
	Engine  *engine
	Mynet   *Mynet
	ext     *proc
	failed  atomic.Bool // keep logs after teardown
	unclean atomic.Bool // teardown failed or left something behind
	closed  atomic.Bool // torn down; tests that start now fail at once

	// Timings of the set-up steps, for the run's summary.
	timings []string
}

// newEnv sets everything up. It returns a non-nil Env as soon as anything
// may exist on the machine, even with an error, so the caller can tear
// down what was created.
func newEnv(pid int) (*Env, error) {
	e := &Env{Layout: layoutFor(pid), Kind: engineKind()}
	e.Engine = &engine{lay: e.Layout}
	e.Mynet = &Mynet{Layout: e.Layout}

	if err := e.timed("provision "+e.Kind+" engine", e.provision); err != nil {
		return nil, err // nothing created yet
	}
	err := runSteps([]step{
		{"directories", e.makeDirs},
		{"namespaces", func() error { return createNamespaces(e.Layout) }},
		{"ext server", e.startExt},
		{"engine start", func() error { return e.timed("engine start", e.Engine.start) }},
		{"image import", func() error { return e.timed("image import", func() error { return importImage(e.Layout) }) }},
	})
	Logf("%s engine %s (storage %s) for %s; %s", e.Kind, e.Engine.Version, e.Engine.Storage, e.Layout, strings.Join(e.timings, ", "))
	if err == nil {
		info, _ := DockerIn(e.Layout, 30*time.Second, "version", "--format",
			"{{range .Server.Components}}{{.Name}} {{.Version}}; {{end}}")
		cg, _ := DockerIn(e.Layout, 30*time.Second, "info", "--format", "cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})")
		Logf("components: %s%s", info, cg)
	}
	return e, err
}

func (e *Env) provision() error {
	bins, err := provisionEngine(e.Kind)
	if err != nil {
		return err
	}
	if _, err := bins.checkVersion(); err != nil {
		return err
	}
	e.Engine.bins = bins
	return nil
}

func (e *Env) makeDirs() error {
	for _, d := range []string{e.Layout.WorkDir, e.Layout.DataRoot, e.Layout.execRoot, e.Layout.LogDir, e.Layout.CLIConfig, e.Layout.WWWDir, e.Layout.PluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) startExt() error {
	p, err := startExtServer(e.Layout)
	e.ext = p
	return err
}

func (e *Env) timed(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	e.timings = append(e.timings, fmt.Sprintf("%s %v", name, time.Since(start).Round(time.Millisecond)))
	return err
}

// RestartEngine stops dockerd (SIGTERM: it stops containers and tells the
// drivers) and starts it again with the same flags; mynet keeps running.
func (e *Env) RestartEngine(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := e.Engine.stop(); err != nil {
		t.Fatalf("stopping dockerd: %v", err)
	}
	stopped := time.Now()
	if err := e.Engine.start(); err != nil {
		t.Fatalf("starting dockerd again: %v", err)
	}
	t.Logf("dockerd stopped in %v, started in %v", stopped.Sub(start).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
}

// Close tears everything down, best effort and exhaustively: every step
// runs even when an earlier one failed, and the errors are joined.
func (e *Env) Close() error {
	e.closed.Store(true)
	start := time.Now()
	var errs []error
	if e.Engine.running() {
		errs = append(errs, e.RemoveDockerObjects(), e.removeManaged())
	}
	errs = append(errs,
		e.Engine.stop(),
		e.Mynet.Proc.Stop(syscall.SIGTERM, 5*time.Second),
		e.ext.Stop(syscall.SIGKILL, time.Second),
	)
	if e.failed.Load() || os.Getenv("MYNET_E2E_KEEP") == "1" {
		e.keepLogs()
	}
	errs = append(errs, teardown(e.Layout, os.Getenv("MYNET_E2E_KEEP") == "1"))
	Logf("teardown took %v", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// RemoveDockerObjects removes every container and user network through
// the engine, so that mynet sees the deletes and cleans its own state, as
// it would in real use.
func (e *Env) RemoveDockerObjects() error {
	var errs []error
	if ids, err := DockerIn(e.Layout, time.Minute, "ps", "-aq"); err == nil && ids != "" {
		_, err := DockerIn(e.Layout, 2*time.Minute, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		errs = append(errs, err)
	}
	nets, err := DockerIn(e.Layout, time.Minute, "network", "ls", "-q", "--filter", "type=custom")
	if err == nil && nets != "" {
		_, err := DockerIn(e.Layout, 2*time.Minute, append([]string{"network", "rm"}, strings.Fields(nets)...)...)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keepLogs copies the logs out of the work dir, which teardown removes.
func (e *Env) keepLogs() {
	dst := filepath.Join(os.TempDir(), fmt.Sprintf("mynet-e2e-%d-logs", e.Layout.pid))
	if err := copyDir(e.Layout.LogDir, dst); err != nil {
		Logf("keeping logs: %v", err)
		return
	}
	Logf("logs kept in %s", dst)
}

func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, ent := range entries {
		if !ent.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, ent.Name()))
		if err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dst, ent.Name()))
		if err == nil {
			_, err = io.Copy(out, in)
			out.Close()
		}
		in.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
