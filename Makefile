# The only entry points of the project: setup, build, run, test, lint, bench.
# Every cargo call shares one target directory (outside the repo, so clones and CI share builds).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
CARGO_TARGET_DIR ?= $(HOME)/.cache/sankalpa-target
export CARGO_TARGET_DIR

SERVICES := sankalpa-auth sankalpa-memory sankalpa-agent-runner sankalpa-chain-orchestrator sankalpa-marketplace sankalpa-triggers sankalpa-gateway
PSQL := PGOPTIONS='--client-min-messages=warning' psql -X -w -q -h 127.0.0.1 -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1
BENCH_DB := sankalpa_bench

.PHONY: setup build release run test lint bench bench-compare bench-report helm-check helm-setup openapi console cli desktop desktop-deb

# The web console (clients/web): built into clients/web/dist, again only when a source is newer.
WEB := clients/web
# The VS Code extension (clients/vscode).
VSCODE := clients/vscode
# The desktop app (clients/desktop): a Cargo workspace of its own, built into a folder of its own
# under the shared target, so the root workspace's builds never compile Tauri.
DESKTOP := clients/desktop
DESKTOP_CARGO := cd $(DESKTOP) && CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)/desktop" $(CARGO)
CONSOLE_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
	$(addprefix $(WEB)/,index.html package-lock.json vite.config.ts tsconfig.json scripts/compress.mjs)

## setup: install (Debian packages, cargo-machete, buf from npm) and start PostgreSQL, Redis, NATS (JetStream); create the database
setup:
	scripts/setup.sh

## build: debug build of the whole workspace
build:
	$(CARGO) build --workspace

## release: optimised binaries of the services and the bench
release:
	$(CARGO) build --release $(addprefix -p ,$(SERVICES)) -p sankalpa-bench

## cli: build the sankalpa CLI (release) and install it with its man pages and bash completion
## under PREFIX (default ~/.local)
PREFIX ?= $(HOME)/.local
cli:
	$(CARGO) build --release -p sankalpa-cli
	install -Dm755 "$(CARGO_TARGET_DIR)/release/sankalpa" "$(PREFIX)/bin/sankalpa"
	mkdir -p "$(PREFIX)/share/man/man1" "$(PREFIX)/share/bash-completion/completions"
	"$(PREFIX)/bin/sankalpa" manpages "$(PREFIX)/share/man/man1"
	"$(PREFIX)/bin/sankalpa" completions bash > "$(PREFIX)/share/bash-completion/completions/sankalpa"

## console: build the web console (vite build, then .br and .gz of each file) unless it is up to date
console: $(WEB)/dist/index.html

$(WEB)/dist/index.html: $(CONSOLE_SOURCES)
	cd $(WEB) && npm run build
	touch $@

## desktop: build the desktop app (debug; <target>/desktop/debug/sankalpa-desktop), run its
## unit tests and check the Debian package made of it
desktop:
	$(DESKTOP_CARGO) build --locked
	$(DESKTOP_CARGO) test --locked
	scripts/desktop-deb-test.sh "$(CARGO_TARGET_DIR)/desktop/debug/sankalpa-desktop"

## desktop-deb: the desktop app, release, as a Debian package in dist/ (the fleet's version)
desktop-deb: setup
	$(DESKTOP_CARGO) build --locked --release
	scripts/desktop-deb.sh "$(CARGO_TARGET_DIR)/desktop/release/sankalpa-desktop" dist

## run: start auth, memory, agent-runner, the chain orchestrator, the marketplace, the triggers service and the gateway locally (Ctrl-C stops them)
run: setup console
	$(CARGO) build --release $(addprefix -p ,$(SERVICES))
	SANKALPA_LOG_FORMAT=pretty SANKALPA_CONSOLE_DIR="$${SANKALPA_CONSOLE_DIR:-$(CURDIR)/$(WEB)/dist}" \
		BIN_DIR="$(CARGO_TARGET_DIR)/release" deploy/run-local.sh

## test: the whole suite against the real local Postgres, Redis and NATS (the web console's browser
## scenarios, the VS Code extension's suites and the desktop app's WebDriver scenario among them),
## the console's and the desktop app's unit tests, the
## extension packaged as a .vsix whose manifest must list every command and setting, and the
## proof that the proto check catches a breaking change and a missing comment
test: setup console desktop
	scripts/proto-check-test.sh
	cd $(WEB) && npm test
	cd $(VSCODE) && npm run package
	export DATABASE_URL=postgres://postgres@127.0.0.1:5432/sankalpa; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace; \
	else \
		$(CARGO) test --workspace; \
	fi

## openapi: rewrite docs/openapi.json from the code (the gateway's contract test fails until it
## matches), the web console's types and the VS Code extension's chain schema generated from it
## (make lint fails until they match)
openapi:
	SANKALPA_WRITE_OPENAPI=1 $(CARGO) test -p sankalpa-gateway --test api the_committed_openapi_document
	if [ -d $(WEB)/node_modules ]; then cd $(WEB) && npm run gen; \
	else echo "openapi: run make setup, then make openapi again, to update $(WEB)/src/api/schema.d.ts"; fi
	cd $(VSCODE) && node scripts/gen.mjs

## lint: formatting check, clippy with warnings as errors, no unused dependency (cargo-machete),
## buf lint and buf breaking (against the merge base with main) on proto/, the web console's
## checks (its API types current with docs/openapi.json, tsc, eslint) and the VS Code
## extension's (its chain schema current with docs/openapi.json, tsc, eslint); the desktop app's
## formatting and clippy in its own workspace
lint: setup
	scripts/proto-check.sh
	cd $(WEB) && npm run lint
	cd $(VSCODE) && npm run lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(DESKTOP_CARGO) fmt --all -- --check
	$(DESKTOP_CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) machete

## bench: start a fleet on free ports against a fresh database, measure the floors and every
## scenario, print one JSON line each and keep them all in bench-results/
bench: setup release
	$(PSQL) -c 'DROP DATABASE IF EXISTS $(BENCH_DB) WITH (FORCE)' -c 'CREATE DATABASE $(BENCH_DB)'
	status=0; \
	SANKALPA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$(BENCH_DB) \
	SANKALPA_BENCH_REVISION="$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD || echo -dirty)" \
		"$(CARGO_TARGET_DIR)/release/sankalpa-bench" || status=$$?; \
	$(PSQL) -c 'DROP DATABASE IF EXISTS $(BENCH_DB) WITH (FORCE)'; \
	exit $$status

## bench-compare: A/B of the working tree against BASE=<rev>, each built into its own target
## folder and run interleaved (A B A B ..., ROUNDS=3) on the same infrastructure; prints each
## scenario's median head/base ratio and its spread; without BASE, two settings of the working
## tree: BASE_ENV="NAME=value ..." against HEAD_ENV="..."
bench-compare: setup release
	BASE_ENV="$(BASE_ENV)" HEAD_ENV="$(HEAD_ENV)" scripts/bench-compare.sh "$(BASE)" "$(or $(ROUNDS),3)"

## bench-report: draw the latest runs in bench-results/ as one PNG per scenario (throughput and
## p99 against concurrency) into docs/benchmarks/, which docs/benchmarks.md embeds
bench-report: setup
	$(CARGO) run --release -q -p sankalpa-bench -- report bench-results docs/benchmarks

## helm-setup: install what helm-check needs (Helm's Go SDK as helm-python-sdk, and the Kubernetes
## API schemas as kubernetes-validate) into a venv under ~/.cache; idempotent
helm-setup:
	scripts/helm-check.sh --install-only

## helm-check: helm lint, helm template (default, production and dev values) and validation of
## every rendered manifest against the Kubernetes API schemas, offline after helm-setup
helm-check:
	scripts/helm-check.sh
