//go:build e2e

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// plugin is the real mynet binary, run in the engine namespace as a legacy
// plugin: the engine finds it by the socket's basename in the fixed
// directory /run/docker/plugins, which any real engine on the machine shares.
// Hence the unique name mynet-e2e-<pid>, never plain mynet.
type Mynet struct {
	Layout Layout
	Bin    string
	Proc   *proc
	// env is added to mynet's environment (withPluginEnv).
	Environ []string
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// pluginBinary builds mynet once per test run (or takes MYNET_E2E_BIN).
func pluginBinary(l Layout) (string, error) {
	buildOnce.Do(func() {
		if bin := os.Getenv("MYNET_E2E_BIN"); bin != "" {
			builtBin = bin
			return
		}
		start := time.Now()
		builtBin, buildErr = buildPlugin(filepath.Join(l.WorkDir, "bin", "mynet"))
		if buildErr == nil {
			Logf("built %s in %v", builtBin, time.Since(start).Round(time.Millisecond))
		}
	})
	return builtBin, buildErr
}

func buildPlugin(out string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	root, err := ModuleRoot(goBin)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s . (in %s): %w\n%s", out, root, err, b)
	}
	return out, nil
}

func ModuleRoot(goBin string) (string, error) {
	gomod, err := Run(30*time.Second, nil, goBin, "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// start runs mynet and waits until its socket answers /Plugin.Activate.
//
// A socket file left by a killed mynet is deliberately not removed first:
// after a crash the real plugin meets the same stale file and must replace
// it itself.
func (pl *Mynet) Start() error {
	if pl.Proc != nil && !pl.Proc.Exited() {
		return fmt.Errorf("mynet already running (pid %d)", pl.Proc.Pid())
	}
	if err := os.MkdirAll(PluginsDir, 0o755); err != nil {
		return err
	}
	argv := []string{
		"nsenter", "--net=" + pl.Layout.NSPath(pl.Layout.EngineNS), pl.Bin,
		"--socket", pl.Layout.PluginSock,
		"--state-dir", pl.Layout.PluginDir,
		"--log-level", "debug",
	}
	p, err := StartLogged("mynet", pl.Layout.PluginLog(), append(os.Environ(), pl.Environ...), syscall.SIGKILL, argv...)
	if err != nil {
		return err
	}
	pl.Proc = p
	err = WaitFor(60*time.Second, 50*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("mynet exited (%v)", p.Err)
		}
		return activate(pl.Layout.PluginSock)
	})
	if err != nil {
		return fmt.Errorf("%w; mynet log tail:\n%s", err, TailFile(pl.Layout.PluginLog(), 0, 25))
	}
	return nil
}

// activate performs the legacy handshake the engine does and checks that
// mynet implements both plugin types.
func activate(sock string) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true, // hold no connection to a plugin that tests may kill
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
		},
	}
	req, _ := http.NewRequest(http.MethodPost, "http://plugin/Plugin.Activate", nil)
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct{ Implements []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("/Plugin.Activate: HTTP %d, decoding body: %w", resp.StatusCode, err)
	}
	got := strings.Join(body.Implements, ",")
	if !strings.Contains(got, "NetworkDriver") || !strings.Contains(got, "IpamDriver") {
		return fmt.Errorf("/Plugin.Activate implements %q, want NetworkDriver and IpamDriver", got)
	}
	return nil
}

func (pl *Mynet) Running() bool { return pl.Proc != nil && !pl.Proc.Exited() }

// --- Harness API for tests ---

// StartPlugin starts mynet (building it on first use) and waits for its socket.
func (e *Env) StartPlugin(t testing.TB) {
	t.Helper()
	if err := e.EnsurePluginBinary(); err != nil {
		t.Fatalf("mynet binary: %v", err)
	}
	if err := e.Mynet.Start(); err != nil {
		t.Fatalf("starting mynet: %v", err)
	}
}

// KillPlugin kills mynet with SIGKILL, as a crash would: no cleanup runs,
// the socket file stays behind.
func (e *Env) KillPlugin(t testing.TB) {
	t.Helper()
	e.restartPluginAtCleanup(t)
	if err := e.Mynet.Proc.Stop(syscall.SIGKILL, 0); err != nil {
		t.Fatalf("killing mynet: %v", err)
	}
}

// StopPlugin stops mynet with SIGTERM and fails t if it takes over 10 s.
func (e *Env) StopPlugin(t testing.TB) {
	t.Helper()
	e.restartPluginAtCleanup(t)
	if err := e.Mynet.Proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("stopping mynet: %v", err)
	}
}

// restartPluginAtCleanup makes sure mynet runs again when the test ends,
// before the test's own cleanups (registered earlier, so run later) remove
// its containers and networks: without the plugin each of those calls
// would hang in the engine's ~15 s of retries and leave state behind.
func (e *Env) restartPluginAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		if e.Mynet.Running() {
			return
		}
		if err := e.Mynet.Start(); err != nil {
			t.Errorf("restarting mynet for cleanup: %v", err)
		}
	})
}

// RestartPlugin stops mynet with SIGTERM and starts it again.
func (e *Env) RestartPlugin(t testing.TB) {
	t.Helper()
	e.StopPlugin(t)
	e.StartPlugin(t)
}

// PluginLog returns everything mynet has logged in this run.
func (e *Env) PluginLog() string {
	b, _ := os.ReadFile(e.Layout.PluginLog())
	return string(b)
}

// Plugin is the driver and IPAM name to use in docker commands: the legacy
// plugin's, or mynet:latest inside WithManagedDriver.
func (e *Env) Plugin() string {
	if name := managedOverride(); name != "" {
		return name
	}
	return e.Layout.PluginName
}

func (e *Env) EnsurePluginBinary() error {
	if e.Mynet.Bin != "" {
		return nil
	}
	bin, err := pluginBinary(e.Layout)
	if err != nil {
		return err
	}
	e.Mynet.Bin = bin
	return nil
}
