//go:build e2e

// Package harness runs the e2e scenarios' world: a private Docker engine in
// a network namespace of its own, an "ext" namespace playing the outside
// world, a busybox image imported offline, and the real mynet binary as a
// legacy or managed plugin. Package e2e (the scenarios) and bench/suite
// (the benchmarks) call Main from their TestMain and share one Env per test
// binary (Shared).
//
// One concern per file:
//
//	engine.go     the private dockerd: flags, daemon.json, start, stop, readiness
//	provision.go  which dockerd: Debian stable's, or unstable's unpacked into the cache
//	env.go        Env: set-up steps in order, RestartEngine, teardown through the engine
//	main.go       Main: root check, stale-run reaping, signals and the timeout guard
//	layout.go     every path and name of one run, derived from the test binary's pid
//	netns.go      the engine and ext namespaces, the ext web server, InEngine/InExt
//	image.go      the busybox image, built from the host's static busybox
//	plugin.go     the bare mynet: build, start, kill, stop, restart
//	managed.go    mynet as a managed plugin, installed with the README's command
//	readme.go     command blocks read from README.md
//	docker.go     the docker CLI against the private engine; per-test set-up
//	containers.go container helpers and reachability probes
//	options.go    listeners, checks and link details of the option and IPv6 scenarios
//	kernel.go     links and iptables rules of the engine namespace
//	proc.go       child processes, commands with timeouts, polling
//	cleanup.go    teardown by name only: this run's (or a dead run's) objects
//	unstable.go   other Debian unstable packages unpacked into the cache
//
// Everything a run creates carries its pid (see layout.go); cleanup never
// touches another run's objects, nor the host's engine, interfaces or rules.
package harness
