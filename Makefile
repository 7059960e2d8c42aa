# migrun — see README.md. `make demo` and `make test` are the two set-up commands.
GO      ?= go
BIN     := bin/migrun
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test unit lint fuzz bench demo demo-local clean e2e schema package package-check

all: build

# build: static, as the package is (CGO_ENABLED=0): one binary for every
# distribution, and the one make bench measures.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/migrun

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

# package: the deb and the RPM in dist/, built by nfpm (packaging/nfpm.yaml)
# from build/pkg: the binary with its version stamped, its bash, zsh and fish
# completion, its man pages, the shipped plans and their JSON Schema
# (/usr/share/migrun/plans). nfpm is pinned in tools/go.mod, a module of its
# own so that its dependencies stay out of migrun's. The package version is
# the tag's (vX.Y.Z), else 0.0.0~gitDATE.COMMIT.
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null); \
  if [ -n "$$v" ]; then echo "$${v\#v}" | tr - '~'; \
  else echo "0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo 0)"; fi)
PKG_ARCH ?= $(shell $(GO) env GOARCH)
package:
	rm -rf build/pkg dist
	mkdir -p build/pkg/completion build/pkg/man build/pkg/plans build/pkg/doc dist
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o build/pkg/migrun ./cmd/migrun
	build/pkg/migrun completion bash > build/pkg/completion/migrun.bash
	build/pkg/migrun completion zsh > build/pkg/completion/_migrun
	build/pkg/migrun completion fish > build/pkg/completion/migrun.fish
	MIGRUN_MAN_DATE="$$(git log -1 --format=%cd --date=format:%Y-%m-%d 2>/dev/null)" \
	  build/pkg/migrun man build/pkg/man > /dev/null && gzip -9n build/pkg/man/*.1
	cp plans/*.yaml plans/plan.schema.json build/pkg/plans/
	cp README.md CHANGELOG.md build/pkg/doc/
	$(GO) -C tools build -o ../build/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	for p in deb rpm; do PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' \
	  build/nfpm package --config packaging/nfpm.yaml --packager $$p --target dist/ || exit 1; done
	@ls -l dist/

# package-check: what CI checks of the packages (root, Debian): the deb
# installed with dpkg -i, then the installed binary, plans, completion and
# man page used; the RPM's file list read with rpm -qpl.
package-check: package
	dpkg -i dist/migrun_*.deb
	test "$$(command -v migrun)" = /usr/bin/migrun
	migrun version | grep -q '^migrun $(VERSION)$$'
	migrun validate /usr/share/migrun/plans
	bash --norc --noprofile -c 'source /usr/share/bash-completion/completions/migrun; \
	  COMP_WORDS=(migrun doc pg_re); COMP_CWORD=2; _migrun; test "$${COMPREPLY[*]}" = "pg_replicate pg_restore"'
	MANPAGER=cat man migrun-apply | grep -q -- '--expect-sha256'
	rpm -qpl dist/migrun-*.rpm > build/rpm-files.txt
	for f in /usr/bin/migrun /usr/share/bash-completion/completions/migrun /usr/share/zsh/site-functions/_migrun \
	  /usr/share/fish/vendor_completions.d/migrun.fish /usr/share/man/man1/migrun-apply.1.gz \
	  /usr/share/migrun/plans/ovirt-engine-remote-db.yaml /usr/share/migrun/plans/plan.schema.json; do \
	  grep -qx "$$f" build/rpm-files.txt || { echo "the RPM lacks $$f"; exit 1; }; done
	@echo "package-check: the deb installs and works; the RPM holds every file"

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
	rm -rf bin build dist
