# mynet — see README.md. `make test` is what CI runs.
GO      ?= go
BIN     := bin/mynet
GOFLAGS := -trimpath
ENGINES ?= stable current

.PHONY: build test deps vet unit e2e clean

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $(BIN) .

# All three layers: unit, kernel (root, in throwaway namespaces) and
# end-to-end against private Docker engines of both supported versions.
test: deps vet unit e2e

# What the tests need on a clean Debian machine that has only Go.
deps:
	@missing=""; \
	for c in iptables:iptables ip:iproute2 nsenter:util-linux busybox:busybox-static dockerd:docker.io; do \
		command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e

# Unit and kernel tests; kernel tests skip with a message unless root.
unit:
	$(GO) test -race -count=1 ./...

e2e:
	@for e in $(ENGINES); do \
		echo "=== e2e on engine $$e"; \
		MYNET_E2E_ENGINE=$$e $(GO) test -tags e2e -count=1 -timeout 30m -v ./e2e || exit 1; \
	done

clean:
	rm -rf bin plugin-build
