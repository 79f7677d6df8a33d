//go:build e2e

// Package suite benchmarks mynet against Docker's bridge driver on the e2e
// harness's private engine (see e2e/harness): TestBenchSuite, run by `make
// bench` and `make bench-quick` with tags e2e and bench, and TestBenchPorts,
// run by bench/ports.sh. See docs/PERFORMANCE.md.
package suite

import (
	"flag"
	"os"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(harness.Main(m))
}
