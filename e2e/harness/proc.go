//go:build e2e

package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running child (dockerd, mynet, the ext httpd) whose output
// goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
	Err  error         // exit status; read only after done is closed
}

// StartLogged starts argv with stdout and stderr appended to logPath.
//
// The child gets its own process group, so a Ctrl-C in the terminal reaches
// only the test binary, which then tears down in order; and a parent-death
// signal, so a test binary killed by a panic or timeout does not leave it
// running. (Pdeathsig fires when the forking OS thread exits; Go only ends
// threads of goroutines that exit while locked to them, which the harness
// never does.) nsenter execs its target, which keeps the death signal.
func StartLogged(name, logPath string, environ []string, deathSig syscall.Signal, argv ...string) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	defer logFile.Close() // the child holds its own copy of the descriptor
	fmt.Fprintf(logFile, "==== e2e %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.Err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then SIGKILLs (for sig SIGKILL, it
// just waits for the exit). A process that is already gone is not an
// error: stop is also the cleanup path.
func (p *proc) Stop(sig syscall.Signal, grace time.Duration) error {
	if p == nil || p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig) // fails only if it already exited
	if sig != syscall.SIGKILL {
		select {
		case <-p.done:
			return nil
		case <-time.After(grace):
		}
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		if sig == syscall.SIGKILL {
			return nil
		}
		return fmt.Errorf("%s (pid %d) ignored %v for %v and was killed", p.name, p.Pid(), sig, grace)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.Pid())
	}
}

// cmdError carries a failed command's stderr, so that tests can match what
// the user would see (docker prints the plugin's message there).
type cmdError struct {
	argv   []string
	stderr string
	err    error
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.argv, " "), e.err, strings.TrimSpace(e.stderr))
}

func (e *cmdError) Unwrap() error { return e.err }

// run runs argv to completion with a timeout and returns its trimmed stdout.
// environ nil means the test binary's environment.
func Run(timeout time.Duration, environ []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, ctx.Err())
	}
	if err != nil {
		return strings.TrimSpace(stdout.String()), &cmdError{argv: argv, stderr: stderr.String(), err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// runSteps runs named steps in order and stops at the first failure.
func runSteps(steps []step) error {
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

type step struct {
	name string
	fn   func() error
}

// WaitFor polls cond every interval until it returns nil or timeout passes,
// and then returns cond's last error.
func WaitFor(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// TailFile returns the last n lines of path from offset on, leaving out
// lines that contain any of the noise strings.
func TailFile(path string, offset int64, n int, noise ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(b[offset:]), "\n"), "\n") {
		if !containsAnyOf(line, noise) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func containsAnyOf(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// dockerdNoise are dockerd log lines that say nothing about networking:
// containerd's per-shim plugin loading and gRPC connection chatter.
var dockerdNoise = []string{"module=grpc", `msg="loading plugin`, `msg="starting signal loop"`}

func FileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func joinLines(lines []string) string { return strings.Join(lines, "\n  ") }

var ErrNotYet = errors.New("not yet")
