# mynet — see README.md. `make test` is what CI runs.
GO      ?= go
BIN     := bin/mynet
GOFLAGS := -trimpath
ENGINES ?= stable current

# Managed plugin (make plugin / make install): its name, the folder it is
# built in, the host directory that keeps its state, and further
# `docker plugin set` settings applied before it is enabled, e.g.
# PLUGIN_SET='LOG_LEVEL=debug'. The docker CLI honours DOCKER_HOST.
PLUGIN       ?= mynet:latest
PLUGIN_DIR   ?= plugin-build
PLUGIN_STATE ?= /var/lib/mynet
PLUGIN_SET   ?=
DOCKER       ?= docker

# The host's xtables lock, which the plugin mounts (config.json's
# xtables-lock) so that its iptables-legacy and dockerd's take turns. The
# mount's source must exist when the plugin starts, at boot too, before
# anything else has run iptables: install creates it, and on systemd hosts
# writes XTABLES_TMPFILES so that it is created at every boot (empty: no
# tmpfiles entry). Another path also needs
# PLUGIN_SET=xtables-lock.source=PATH.
XTABLES_LOCK     ?= /run/xtables.lock
XTABLES_TMPFILES ?= /etc/tmpfiles.d/mynet-xtables-lock.conf

.PHONY: build install-bin test deps vet unit fuzz soak e2e clean plugin install bench bench-quick bench-suite

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags "-s -w -X github.com/mynet/mynet/cli.Version=$$(git describe --always --dirty) -X github.com/mynet/mynet/cli.Commit=$$(git rev-parse --short HEAD)" -o $(BIN) .

# The binary on PATH, for the `mynet …` commands the README runs.
BINDIR ?= /usr/local/bin
install-bin: build
	install -D -m 0755 $(BIN) $(BINDIR)/mynet

# All three layers: unit, kernel (root, in throwaway namespaces) and
# end-to-end against private Docker engines of both supported versions.
test: deps vet unit fuzz soak e2e

# What the tests need on a clean Debian machine that has only Go.
deps:
	@missing=""; \
	for c in iptables:iptables ip:iproute2 nsenter:util-linux busybox:busybox-static dockerd:docker.io docker-compose:docker-compose; do \
		command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/... ./bench/...
	$(GO) vet -tags 'e2e bench' ./e2e/... ./bench/...

# Unit and kernel tests; kernel tests skip with a message unless root, and
# the run ends with how many tests skipped and why.
unit:
	@scripts/unit.sh "$(GO)"

# A short run of every fuzz target: a fixed number of inputs each (the
# third field, about 10 s each on a busy 2-core machine), not a duration,
# since Go's fuzz coordinator (go1.26, golang/go#75804) can fail a
# duration-bounded run with "context deadline exceeded" as it ends. A longer
# run: make fuzz FUZZTIME=2000000x (or a duration, e.g. 10m, accepting that
# flake). Found inputs land in testdata/fuzz/ of the package.
FUZZTIME ?=
FUZZ_TARGETS := FuzzDispatch:./plugin:40000x FuzzParseNetworkOptions:./driver:50000x FuzzNames:./driver:30000x \
	FuzzRequests:./ipam:30000x FuzzParseDefaultPools:./ipam:30000x
fuzz:
	@log=$$(mktemp /tmp/mynet-fuzz.XXXXXX); trap 'rm -f $$log' EXIT; \
	for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; n=$${rest#*:}; [ -z "$(FUZZTIME)" ] || n=$(FUZZTIME); \
		echo "fuzz $$name ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$n $$pkg >$$log 2>&1 || { cat $$log; exit 1; }; \
	done

# Container lifecycles with published ports through the real kernel, with
# goroutines, open files and heap checked flat (root; SOAK_CYCLES each).
# Logs go to a file of their own, so two runs on one machine do not mix
# them (two concurrent make test runs once printed the same soak figures).
SOAK_CYCLES ?= 1000
soak:
	@log=$$(mktemp /tmp/mynet-soak.XXXXXX); \
	MYNET_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 30m ./driver >$$log 2>&1; \
	rc=$$?; grep -E '^(---|ok|FAIL|PASS)|cycles in|grew|left' $$log; \
	if [ $$rc -eq 0 ]; then rm -f $$log; else echo "soak log: $$log"; fi; exit $$rc

# Every engine runs even when an earlier one failed, so one run tells about
# both; the exit status says whether all passed.
e2e:
	@status=0; for e in $(ENGINES); do \
		echo "=== e2e on engine $$e"; \
		MYNET_E2E_ENGINE=$$e $(GO) test -tags e2e -count=1 -timeout 30m -v ./e2e || { echo "=== e2e on engine $$e FAILED"; status=1; }; \
	done; exit $$status

# The managed plugin's folder, $(PLUGIN_DIR)/config.json and rootfs/, made
# from this machine's files (static mynet, the iptables tools and their
# libraries): nothing is pulled. The Dockerfile is the same for machines
# that can pull images.
plugin: build
	scripts/plugin-rootfs.sh $(BIN) config.json $(PLUGIN_DIR)

# Creates and enables $(PLUGIN) from $(PLUGIN_DIR) in the engine DOCKER_HOST
# names (the local one by default). An installed $(PLUGIN) is replaced:
# disabled with -f, removed, created again. Its networks and containers keep
# working, since the state lives in $(PLUGIN_STATE) on the host.
install: plugin
	mkdir -p $(PLUGIN_STATE)
	(umask 077; : >>$(XTABLES_LOCK))
	@if [ -n "$(XTABLES_TMPFILES)" ] && [ -d "$$(dirname $(XTABLES_TMPFILES))" ]; then \
		echo 'f $(XTABLES_LOCK) 0600 root root -' >"$(XTABLES_TMPFILES)"; \
		echo "wrote $(XTABLES_TMPFILES): systemd creates $(XTABLES_LOCK) at boot, before the engine starts the plugin"; \
	fi
	@if $(DOCKER) plugin inspect $(PLUGIN) >/dev/null 2>&1; then \
		echo "replacing the installed $(PLUGIN)"; \
		$(DOCKER) plugin disable -f $(PLUGIN) >/dev/null 2>&1; \
		$(DOCKER) plugin rm -f $(PLUGIN); \
	fi
	$(DOCKER) plugin create $(PLUGIN) $(PLUGIN_DIR)
	$(DOCKER) plugin set $(PLUGIN) state.source=$(PLUGIN_STATE) $(PLUGIN_SET)
	$(DOCKER) plugin enable $(PLUGIN)

# Benchmarks (root): mynet against Docker's bridge driver on private
# engines, both drivers in one run, alternating; see docs/PERFORMANCE.md.
# First the Go micro-benchmarks (no root), then the scenario suite once per
# engine. Each run prints its table and leaves results.json, samples.csv,
# table.txt, scaling.png and ports.png in $(BENCH_OUT)/<date>-<engine>/.
BENCH_ENGINES       ?= stable current
BENCH_QUICK_ENGINES ?= stable
BENCH_OUT           ?= $(CURDIR)/bench/out
BENCH_MICRO          = $(GO) test -run '^$$' -bench . -benchmem ./ipam ./bench

bench:
	@mkdir -p $(BENCH_OUT)
	$(BENCH_MICRO) -count 5 >$(BENCH_OUT)/micro.txt; s=$$?; cat $(BENCH_OUT)/micro.txt; exit $$s
	@$(MAKE) --no-print-directory bench-suite MODE=full ENGINES_RUN="$(BENCH_ENGINES)" TIMEOUT=150m

# A short run: a few minutes per engine, one repetition of most scenarios.
bench-quick:
	@mkdir -p $(BENCH_OUT)
	$(BENCH_MICRO) -count 3 -benchtime 200ms >$(BENCH_OUT)/micro.txt; s=$$?; cat $(BENCH_OUT)/micro.txt; exit $$s
	@$(MAKE) --no-print-directory bench-suite MODE=quick ENGINES_RUN="$(BENCH_QUICK_ENGINES)" TIMEOUT=40m

# Every engine runs even when an earlier one failed (a run writes its
# results whatever happened); the exit status says whether all passed.
bench-suite:
	@status=0; for e in $(ENGINES_RUN); do \
		echo "=== $(MODE) benchmark on engine $$e"; \
		MYNET_BENCH=$(MODE) MYNET_BENCH_OUT=$(BENCH_OUT) MYNET_BENCH_MICRO=$(BENCH_OUT)/micro.txt MYNET_E2E_ENGINE=$$e \
			$(GO) test -tags 'e2e bench' -count=1 -timeout $(TIMEOUT) -run '^TestBenchSuite$$' -v ./bench/suite || status=1; \
	done; exit $$status

clean:
	rm -rf bin plugin-build
