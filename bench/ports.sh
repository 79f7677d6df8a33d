#!/usr/bin/env bash
# Published ports, mynet against Docker's bridge driver: publishes 1, 100
# and 1000 ports (-p 20000-20999:20000-20999) on a mynet network and on a
# Docker bridge network of the e2e harness's private engine, and prints the
# `docker run` and `docker rm -f` times, the iptables rules the start added,
# the extra processes (docker-proxy) and their memory, and for mynet the
# growth of its own memory and open descriptors (one per held host port).
#
#   sudo bench/ports.sh                 # both engines: stable (20.10) and current (28.5)
#   sudo bench/ports.sh current
#
# A benchmark, not a test: numbers depend on the machine. Needs root, like
# the e2e tests it reuses (bench/suite/ports_test.go, on e2e/harness).
set -euo pipefail
cd "$(dirname "$0")/.."
engines=("${@:-stable}")
[ $# -eq 0 ] && engines=(stable current)
header=1
for e in "${engines[@]}"; do
	out=$(MYNET_BENCH_PORTS=1 MYNET_E2E_ENGINE="$e" go test -tags e2e -count=1 -timeout 60m \
		-run '^TestBenchPorts$' -v ./bench/suite 2>&1) || { echo "$out" | grep -v 'level=' | tail -40; exit 1; }
	rows=$(echo "$out" | sed -n 's/^BENCH //p')
	if [ "$header" = 1 ]; then echo "$rows" | head -1; header=0; fi
	echo "$rows" | tail -n +2
done
