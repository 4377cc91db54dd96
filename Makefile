# remora — make targets. `make test` is what CI runs (after `make lint`).
GO        ?= go
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build test test-short lint fmt bench bench-quick bench-micro demo fuzz clean release check-deploy

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/remora ./cmd/remora

# Every test, with the race detector. Tests that need root (network
# namespaces, iptables) skip with a message when not root. The packages
# on raw socket calls run once more without it: under the detector
# internal/rawio steps aside (see internal/rawio/race.go).
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -timeout 5m ./internal/rawio ./proxy ./upstream
	@$(MAKE) --no-print-directory check-deploy

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# The side-by-side suite (bench/cmd/remora-bench, docs/performance.md):
# direct, remora, nginx, HAProxy and a plain Go ReverseProxy under fortio,
# 3 interleaved rounds (under 5 minutes); the report goes to bench/results.
# bench-quick is one short round (under a minute). Root adds remora's TCP
# path (iptables in a namespace); nginx and haproxy are used if installed.
bench:
	$(GO) run ./bench/cmd/remora-bench -out bench/results

bench-quick:
	$(GO) run ./bench/cmd/remora-bench -quick -out bench/results

# Go micro-benchmarks of the hot paths (route match, LB, outlier, header
# operations, the whole HTTP path's allocations).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

demo:
	$(GO) run ./cmd/remora demo

# Run each fuzz target for FUZZTIME (default 1m), one after another.
FUZZTIME ?= 1m
PROXY_FUZZ := FuzzSNI FuzzSniff FuzzParseHead FuzzFrontEnd FuzzHeaderPrep
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config
	@set -e; for f in $(PROXY_FUZZ); do \
	  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./proxy; \
	done

# The long soak (not in CI): mixed HTTP/1.1, HTTP/2, gRPC and TCP through
# a real remora with backends killed, reloads and slow clients; `make test`
# runs the same test for 30s.
SOAKTIME ?= 10m
soak:
	REMORA_SOAK_DURATION=$(SOAKTIME) $(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./e2e

# Render deploy/kubernetes with the kustomize Go library and check every
# object against the Kubernetes API types. A separate module, so the remora
# module carries no Kubernetes dependency.
check-deploy:
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 ./...

# Static linux/amd64 and linux/arm64 binaries and their SHA256SUMS in DIST.
DIST      ?= dist
RELEASE_PLATFORMS := linux/amd64 linux/arm64
release:
	@mkdir -p $(DIST)
	@set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "build $(DIST)/remora-$$os-$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/remora-$$os-$$arch ./cmd/remora; \
	done
	cd $(DIST) && sha256sum remora-linux-amd64 remora-linux-arm64 > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

clean:
	rm -rf bin
