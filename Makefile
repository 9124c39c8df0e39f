# segwatch — see README.md. `make run` and `make test` are the two commands a
# newcomer needs; `make check` is what a change must pass.
GO        ?= go
BIN       := bin/segwatch
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DATA      ?= ./data
FUZZTIME  ?= 20s
BENCHTIME ?= 1s

.PHONY: build run test check vet fmt staticcheck bench fuzz demo clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/segwatch

# Build, then serve on the embedded default config with data in ./data.
run: build
	$(BIN) serve --data $(DATA)

# Feed the running `make run` server with simulated devices (second terminal).
demo: build
	$(BIN) simulate --syslog 127.0.0.1:5514 --netflow 127.0.0.1:2055 --scenario all --duration 10m

# vet + the race-enabled test suite, integration tests included.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

check: fmt vet staticcheck test

# Benchmarks of every hot path (parse, normalize, index, search, decode).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
