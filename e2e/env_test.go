//go:build e2e

package e2e

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
	lay     layout
	kind    string
	engine  *engine
	plugin  *plugin
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
	e := &Env{lay: layoutFor(pid), kind: engineKind()}
	e.engine = &engine{lay: e.lay}
	e.plugin = &plugin{lay: e.lay}

	if err := e.timed("provision "+e.kind+" engine", e.provision); err != nil {
		return nil, err // nothing created yet
	}
	err := runSteps([]step{
		{"directories", e.makeDirs},
		{"namespaces", func() error { return createNamespaces(e.lay) }},
		{"ext server", e.startExt},
		{"engine start", func() error { return e.timed("engine start", e.engine.start) }},
		{"image import", func() error { return e.timed("image import", func() error { return importImage(e.lay) }) }},
	})
	logf("%s engine %s (storage %s) for %s; %s", e.kind, e.engine.version, e.engine.storage, e.lay, strings.Join(e.timings, ", "))
	if err == nil {
		info, _ := dockerIn(e.lay, 30*time.Second, "version", "--format",
			"{{range .Server.Components}}{{.Name}} {{.Version}}; {{end}}")
		cg, _ := dockerIn(e.lay, 30*time.Second, "info", "--format", "cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})")
		logf("components: %s%s", info, cg)
	}
	return e, err
}

func (e *Env) provision() error {
	bins, err := provisionEngine(e.kind)
	if err != nil {
		return err
	}
	if _, err := bins.checkVersion(); err != nil {
		return err
	}
	e.engine.bins = bins
	return nil
}

func (e *Env) makeDirs() error {
	for _, d := range []string{e.lay.workDir, e.lay.dataRoot, e.lay.execRoot, e.lay.logDir, e.lay.cliConfig, e.lay.wwwDir, e.lay.pluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) startExt() error {
	p, err := startExtServer(e.lay)
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
	if err := e.engine.stop(); err != nil {
		t.Fatalf("stopping dockerd: %v", err)
	}
	stopped := time.Now()
	if err := e.engine.start(); err != nil {
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
	if e.engine.running() {
		errs = append(errs, e.removeDockerObjects(), e.removeManaged())
	}
	errs = append(errs,
		e.engine.stop(),
		e.plugin.p.stop(syscall.SIGTERM, 5*time.Second),
		e.ext.stop(syscall.SIGKILL, time.Second),
	)
	if e.failed.Load() || os.Getenv("MYNET_E2E_KEEP") == "1" {
		e.keepLogs()
	}
	errs = append(errs, teardown(e.lay, os.Getenv("MYNET_E2E_KEEP") == "1"))
	logf("teardown took %v", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// removeDockerObjects removes every container and user network through
// the engine, so that mynet sees the deletes and cleans its own state, as
// it would in real use.
func (e *Env) removeDockerObjects() error {
	var errs []error
	if ids, err := dockerIn(e.lay, time.Minute, "ps", "-aq"); err == nil && ids != "" {
		_, err := dockerIn(e.lay, 2*time.Minute, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		errs = append(errs, err)
	}
	nets, err := dockerIn(e.lay, time.Minute, "network", "ls", "-q", "--filter", "type=custom")
	if err == nil && nets != "" {
		_, err := dockerIn(e.lay, 2*time.Minute, append([]string{"network", "rm"}, strings.Fields(nets)...)...)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keepLogs copies the logs out of the work dir, which teardown removes.
func (e *Env) keepLogs() {
	dst := filepath.Join(os.TempDir(), fmt.Sprintf("mynet-e2e-%d-logs", e.lay.pid))
	if err := copyDir(e.lay.logDir, dst); err != nil {
		logf("keeping logs: %v", err)
		return
	}
	logf("logs kept in %s", dst)
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
