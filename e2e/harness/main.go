//go:build e2e

package harness

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env is the one private engine shared by every test of this run. Tests
// reach it through UseEngine/UsePlugin or Shared; Main owns its lifetime.
var env *Env

// Shared is the run's private engine, nil before Main has set it up.
func Shared() *Env { return env }

// Main sets up the private engine, runs the tests and tears everything
// down; a package's TestMain passes its result to os.Exit. Without root it
// skips the whole package.
func Main(m *testing.M) (code int) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: needs root (network namespaces, dockerd, iptables); skipping the whole package")
		return 0
	}
	reapStale()

	e, err := newEnv(os.Getpid())
	if e != nil {
		env = e
		teardown := onceTeardown(e)
		stopGuards := guardTeardown(teardown)
		defer func() {
			stopGuards()
			teardown()
			if e.unclean.Load() && code == 0 {
				code = 1 // a run that cannot clean up after itself fails
			}
		}()
	}
	if err != nil {
		Logf("setup: %v", err)
		if e != nil {
			e.failed.Store(true)
		}
		return 1
	}
	code = m.Run()
	e.failed.Store(code != 0)
	return code
}

// onceTeardown returns a function that tears the environment down exactly
// once, whoever calls it first: the normal return, a signal, or the guard
// before the test binary's own timeout.
func onceTeardown(e *Env) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := e.Close(); err != nil {
				Logf("teardown: %v", err)
				e.unclean.Store(true)
			}
			if left := leftovers(e.Layout); len(left) > 0 {
				Logf("teardown left these behind:\n  %s", joinLines(left))
				e.unclean.Store(true)
			}
		})
	}
}

// guardTeardown runs teardown on SIGINT/SIGTERM and shortly before the
// `go test -timeout` deadline, whose panic would otherwise end the process
// without running deferred calls. Children carry a parent-death signal too
// (see StartLogged), so a crash still stops dockerd and mynet; what is left
// on disk the next run's reapStale removes.
func guardTeardown(teardown func()) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var timer *time.Timer
	if d := timeoutBudget(); d > 0 {
		timer = time.AfterFunc(d, func() {
			Logf("test timeout is near: tearing down the private engine now")
			teardown()
		})
	}
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			Logf("got %v: tearing down", s)
			teardown()
			os.Exit(2)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		if timer != nil {
			timer.Stop()
		}
	}
}

// timeoutBudget is how long tests may run before teardown must start so it
// finishes before the -test.timeout panic; 0 means no deadline.
func timeoutBudget() time.Duration {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return 0
	}
	d, err := time.ParseDuration(f.Value.String())
	if err != nil || d <= 0 {
		return 0
	}
	const margin = 45 * time.Second // dockerd stop (≤20 s) + sweep + unmounts
	if d <= 2*margin {
		return d / 2
	}
	return d - margin
}

func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}
