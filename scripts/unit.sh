#!/usr/bin/env bash
# make unit: every package's tests with -race, printed as plain `go test`
# prints them, then how many tests skipped and why, so that a run without
# root (the kernel tests skip) does not read as a full green.
# Usage: unit.sh GO
set -uo pipefail
go=${1:-go}
log=$(mktemp /tmp/mynet-unit.XXXXXX)
trap 'rm -f "$log"' EXIT
$go test -race -count=1 -json ./... >"$log" 2>&1
rc=$?
# test2json lines, one event each; a line that is not JSON (a build error)
# is printed as it is.
awk -v rc="$rc" '
function field(name,   m) {
	if (match($0, "\"" name "\":\"([^\"\\\\]|\\\\.)*\"")) {
		m = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5)
		gsub(/\\n/, "\n", m); gsub(/\\t/, "\t", m); gsub(/\\"/, "\"", m); gsub(/\\\\/, "\\", m)
		return m
	}
	return ""
}
!/^\{/ { print; next }
{
	action = field("Action"); test = field("Test"); pkg = field("Package"); out = field("Output")
	key = pkg " " test
	if (action == "output") {
		if (test == "") { if (out !~ /^(PASS|FAIL)\n$|^=== /) printf "%s", out; next }
		if (out !~ /^ *(=== |--- )/) { text[key] = text[key] out; last[key] = out }
		next
	}
	if (test == "") next
	if (action == "skip") { skipped++; total++; sub(/^ *[A-Za-z_0-9]+\.go:[0-9]+: /, "", last[key]); sub(/\n$/, "", last[key]); why[last[key]]++ }
	if (action == "pass") total++
	if (action == "fail") { total++; failed = failed "--- FAIL: " test " (" pkg ")\n" text[key] }
}
END {
	if (failed != "") printf "\n%s", failed
	printf "unit: %d tests, %d skipped\n", total, skipped
	for (w in why) printf "  %4d skipped: %s\n", why[w], w
}' "$log"
exit $rc
