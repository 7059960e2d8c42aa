# migrun — see README.md. `make demo` and `make test` are the two set-up commands.
GO      ?= go
BIN     := bin/migrun
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test unit lint fuzz bench demo demo-local clean e2e schema

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/migrun

# test: what CI runs. Unit tests (the fuzz target's seed corpus runs as part
# of them), vet and formatting; as root on Linux also the end-to-end tests
# on throwaway namespace hosts (they need root to create them).
test: lint unit
	@if [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory e2e; \
	  else echo "e2e: skipped (needs root on Linux)"; fi

# Every go test has an explicit -timeout: the default (10 minutes per
# package) is shorter than the e2e suite on a busy machine.
unit:
	$(GO) test -count=1 -timeout 15m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# fuzz: a longer run of the plan loader's fuzz target (FUZZTIME=30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -timeout 30m -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./plan

# e2e: end-to-end tests against the throwaway hosts engine and db that
# e2e/hosts/up.sh brings up on this machine (root only). e2e/run.sh takes
# them down again even when the tests time out or the run is killed.
e2e:
	@GO=$(GO) e2e/run.sh

# bench: the Go benchmarks, then (root on Linux) bench/run.sh: migrun
# against the manual procedure, Ansible, scp and ssh on a throwaway pair
# of test hosts of its own; one table and a summary line of ratios against
# issue 9's targets. Knobs: MIGRUN_BENCH_* (see bench/run.sh), e.g.
# MIGRUN_BENCH_DB_MB=100 MIGRUN_BENCH_ROUNDS=1 MIGRUN_BENCH_SWEEP=0 for a quick one.
bench:
	$(GO) test -timeout 30m -run '^$$' -bench . -benchmem ./...
	@if [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ]; then bench/run.sh; \
	  else echo "bench/run.sh: skipped (needs root on Linux)"; fi

# schema: regenerate plans/plan.schema.json, the JSON Schema editors use for
# the shipped plans; a unit test fails when it is out of date. Through a
# temporary file, so a failed build leaves the committed schema alone.
schema:
	$(GO) run ./cmd/migrun schema > plans/plan.schema.json.tmp && \
	  mv plans/plan.schema.json.tmp plans/plan.schema.json || { rm -f plans/plan.schema.json.tmp; exit 1; }

# demo: build migrun, bring up the two test hosts, dry-run and apply the
# headline plan (the engine database moves to db), show the engine writing
# to the new database, and take the hosts down. Root on Linux only.
demo: build
	@scripts/demo-hosts.sh $(BIN)

# demo-local: the same shape of runbook on this machine alone, no root.
demo-local: build
	@scripts/demo.sh $(BIN)

clean:
	rm -rf bin
