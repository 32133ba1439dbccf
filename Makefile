# mhg — Migrant Health Gateway. `make run` and `make test` are all a fresh
# machine needs (Go; redis-server and Node.js/npm for the integration tests,
# which .ci/run installs).

GO          ?= go
BIN         := bin/mhg
PKGS        := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/migrant-health/mhg/gateway/server.Version=$(VERSION)
CLIENTS     := conformance/clients
BROWSER     := gateway/console/testdata/browser
FHIRSERVER  := conformance/fhirserver
FUZZTIME    ?= 20s

.PHONY: all build run test test-race test-deps test-short lint bench fuzz clients fhirserver browser-deps clean

all: build

## build: the first build compiles every dependency, which takes minutes on
## a small machine: say so, or a newcomer thinks `make run` hung.
build:
	@echo "mhg: building $(BIN) (the first build compiles every dependency and takes a few minutes)"
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./gateway/cmd/mhg

## run: the embedded default (in-process cache, sample national sources,
## built-in policies, development signing key, decisions logged for the
## console's impact analysis); prints how to call it and a one-time link
## to the console.
run: build
	MHG_POLICY_DECISION_LOG=$${MHG_POLICY_DECISION_LOG:-.mhg/decisions.jsonl} ./$(BIN) serve

## test: unit and integration tests, the whole suite, without the race
## detector: under three minutes on two cores with a warm build cache. The Redis
## tests start their own redis-server (or use REDIS_URL); the FHIR client
## tests run the pinned npm client from conformance/clients, the
## third-party server test runs Medplum's in-memory FHIR server pinned in
## conformance/fhirserver as three national sources, and the console's
## browser tests drive Debian's chromium with axe-core pinned in
## gateway/console/testdata/browser; both must be there (plain `go test`
## skips them when they are not).
test: test-deps clients fhirserver browser-deps
	MHG_REQUIRE_CLIENTS=1 $(GO) test -count=1 -timeout 25m $(PKGS)

## test-race: the same suite under the race detector, which multiplies the
## CPU time several times over (about ten minutes on two cores). .ci/run
## runs it after `make test`, so every change is race-checked; run it
## yourself after touching anything concurrent.
test-race: test-deps clients fhirserver browser-deps
	MHG_REQUIRE_CLIENTS=1 $(GO) test -race -count=1 -timeout 25m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

## test-deps: redis-server, Node.js/npm and chromium from Debian's packages
## when missing (scripts/test-deps).
test-deps:
	./scripts/test-deps

clients: $(CLIENTS)/node_modules/.installed

$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	cd $(CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

fhirserver: $(FHIRSERVER)/node_modules/.installed

$(FHIRSERVER)/node_modules/.installed: $(FHIRSERVER)/package.json $(FHIRSERVER)/package-lock.json
	cd $(FHIRSERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser-deps: $(BROWSER)/node_modules/.installed

$(BROWSER)/node_modules/.installed: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## lint: gofmt, go vet, staticcheck, and the policy checks (compile, format,
## input schema, non-discrimination).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) run ./gateway/cmd/mhg policy check

## bench: Go benchmarks, each next to its baseline in the same run, and the
## load run (BenchmarkLoad: each shape of issue 16 over 8 loopback
## connections, alternating with a bare server answering the same bytes;
## req/s, pct-of-bare, p99-ms; MHG_LOAD_SECONDS per shape, default 4).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m $(PKGS)

## fuzz: every fuzz target, FUZZTIME each.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' gateway mappings conformance policies); do \
	  d=$$(dirname $$f); for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -c6-); do \
	    echo "== $$d $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$d; done; done

clean:
	rm -rf bin
