# mhg — Migrant Health Gateway. `make run` and `make test` are all a fresh
# machine needs (Go; redis-server and Node.js/npm for the integration tests).

GO            ?= go
BIN           := bin/mhg
PKGS          := ./...
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/migrant-health/mhg/gateway/server.Version=$(VERSION)
CLIENTS       := conformance/clients

.PHONY: all build run test test-short lint bench fuzz clients clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./gateway/cmd/mhg

## run: the embedded default (in-process cache, sample national sources).
run: build
	./$(BIN) serve

## test: unit + integration tests with the race detector. Needs
## redis-server on PATH (or REDIS_URL) and npm for the FHIR client test.
test: clients
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

clients: $(CLIENTS)/node_modules/.installed

$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	cd $(CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) run ./gateway/cmd/mhg policy check

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 20m $(PKGS)
	./scripts/load.sh

fuzz:
	./scripts/fuzz.sh 20s

clean:
	rm -rf bin
