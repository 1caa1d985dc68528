# Upstream — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CUSTOMER ?= demo
DEMO_DIR ?= .upstream/sample
# The sample year ends 2025-12-31; the run sees everything decided before this day.
DEMO_RUN_DAY ?= 2026-01-01
# The demo's people (local Auth emulator only; production invites by e-mail).
DEMO_OWNER ?= owner@demo-aba.example
DEMO_VIEWER ?= frontdesk@demo-aba.example
DEMO_PASSWORD ?= demo-password-1

# The Firebase Auth emulator (npm firebase-tools), project-local: `npm ci` from the lock file,
# without install scripts (the emulator needs none of them; the lock's hashes are checked).
NODE_STAMP := node_modules/.installed

INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: help setup browser test test-unit lint infra-check lock lock-check audit-deps fuzz chaos phi-scan bench-all bench-event-alert package demo down bench bench-detect bench-network notebooks bench-webhook bench-risk clean

help:  ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The functions' closure is constrained to requirements.lock's versions (without its hashes:
# pip would then demand hashes of the editable package too), so tests run what deploys.
$(STAMP): requirements.txt requirements.lock requirements-dev.txt shared/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	grep -E '^[A-Za-z0-9]' requirements.lock | sed 's/ *\\$$//' > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c $(VENV)/constraints.txt -e shared
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)  ## create .venv and node_modules, install everything

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check shared functions tests bench infra/tools .ci notebooks
	$(BIN)/mypy

$(INFRA_STAMP): requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet -r requirements-infra.txt
	touch $(INFRA_STAMP)

infra-check: $(INFRA_STAMP)  ## terraform fmt, checkov (no unexplained finding); the consistency test runs in `test`
	$(INFRA_VENV)/bin/terraform fmt -check -recursive -diff infra
	BC_SKIP_MAPPING=TRUE $(INFRA_VENV)/bin/checkov -d infra --framework terraform --quiet \
	  --compact --skip-download 2>/dev/null

# The deployed closure: every package the functions install, pinned with its hashes, from the
# direct pins in requirements.txt (for the functions' runtime: CPython 3.11 on x86-64 Linux).
LOCK_COMPILE = $(BIN)/uv pip compile requirements.txt --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --no-header --quiet

lock: $(STAMP)  ## rewrite requirements.lock (the hashed closure the functions install)
	$(LOCK_COMPILE) -o requirements.lock

# Resolving into a copy of the lock keeps its pins where they still satisfy requirements.txt
# (uv prefers an output file's versions), so a new upstream release never fails the check;
# a changed, added or removed direct pin does.
lock-check: $(STAMP)  ## requirements.lock is what requirements.txt resolves to, hashes included
	@cp requirements.lock $(VENV)/requirements.lock.check
	@$(LOCK_COMPILE) -o $(VENV)/requirements.lock.check
	@diff -u requirements.lock $(VENV)/requirements.lock.check \
	  && echo "lock-check: requirements.lock matches requirements.txt ($$(grep -c '==' requirements.lock) packages, hashed)" \
	  || { echo "lock-check: requirements.lock is stale: run make lock"; exit 1; }

audit-deps: $(STAMP)  ## pip-audit of requirements.lock; packages it could not check fail the target
	$(BIN)/python .ci/audit_deps.py

FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)  ## hypothesis on every input parser, both receivers, the API and the sign-in pages (FUZZ_EXAMPLES per target)
	UPSTREAM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -q -p no:cacheprovider \
	  --hypothesis-show-statistics | grep -E "^tests/|passing|failing|invalid|Typical|Stopped|passed|failed"

chaos: $(STAMP) $(NODE_STAMP)  ## kill -9 each function mid-work (and freeze the emulators); 0 lost, 0 doubled
	$(BIN)/python -u bench/chaos.py

phi-scan: $(STAMP) $(NODE_STAMP)  ## the pipeline on sample data, then logs, Firestore, rejects, e-mails and CLI output searched for raw patient ids and names
	$(BIN)/python -u bench/phi_scan.py

package: $(STAMP)  ## reproducible function archives in build/functions (what Terraform deploys)
	$(BIN)/upstream package --out build/functions

# Debian's Chromium and its driver for the dashboard's browser test (Selenium drives them).
browser:  ## install Debian's chromium and chromium-driver if missing (root or sudo)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; }
	@chromium --version 2>/dev/null

test-unit: $(STAMP)  ## pure tests only (no emulator)
	$(BIN)/pytest tests/unit -q

test: $(STAMP) $(NODE_STAMP) browser lint infra-check lock-check  ## lint, infra checks, then unit, integration (emulators) and end-to-end tests
	$(BIN)/pytest tests -q

demo: $(STAMP) $(NODE_STAMP)  ## run Upstream locally on a year of sample data
	$(BIN)/upstream stack up
	$(BIN)/upstream tenant add $(DEMO_CUSTOMER) --name "Demo ABA Practice" \
	  --notify-email billing@demo-aba.example
	$(BIN)/upstream user add $(DEMO_CUSTOMER) $(DEMO_OWNER) --role owner --password $(DEMO_PASSWORD) --exists-ok
	$(BIN)/upstream user add $(DEMO_CUSTOMER) $(DEMO_VIEWER) --role viewer --password $(DEMO_PASSWORD) --exists-ok
	$(BIN)/upstream sample --out $(DEMO_DIR)
	@for f in $(DEMO_DIR)/claims/* $(DEMO_DIR)/authorizations/* $(DEMO_DIR)/remittance/*; do \
	  $(BIN)/upstream upload "$$f" --customer $(DEMO_CUSTOMER) --format line || exit 1; \
	done
	@$(BIN)/upstream records --customer $(DEMO_CUSTOMER) --count --format table
	@$(BIN)/upstream records --customer $(DEMO_CUSTOMER) --kind authorizations --count --format table
	@echo; echo "Weekly detector run as Cloud Scheduler would start it on $(DEMO_RUN_DAY):"
	@$(BIN)/upstream run weekly --customer $(DEMO_CUSTOMER) --as-of $(DEMO_RUN_DAY) --format table
	@echo; echo "Alerts:"; $(BIN)/upstream alerts --customer $(DEMO_CUSTOMER)
	@echo; echo "E-mails the alert dispatcher sent (HIGH and CRITICAL; files from the local SMTP server):"
	@$(BIN)/upstream mail --wait 60
	@echo; echo "Stack (stop it with: make down; the api URL serves /v1/openapi.json):"; $(BIN)/upstream stack status
	@echo; echo "Dashboard: open $$($(BIN)/upstream stack status --format json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["functions"]["api"])')"
	@echo "Sign in as the practice's owner:  $(DEMO_OWNER)  password: $(DEMO_PASSWORD)"
	@echo "          or as its front desk:   $(DEMO_VIEWER)  password: $(DEMO_PASSWORD)  (viewer: reads only)"
	@echo "A machine key for the JSON API (shown once: curl -H 'Authorization: Bearer <token>' <api>/v1/alerts):"
	@$(BIN)/upstream tenant key $(DEMO_CUSTOMER) --scope write --name demo

down: $(STAMP)  ## stop the local stack
	$(BIN)/upstream stack down

bench: $(STAMP) $(NODE_STAMP)  ## ingestion benchmark (100k-line messy CSV through the function)
	$(BIN)/python bench/bench_ingest.py

bench-webhook: $(STAMP) $(NODE_STAMP)  ## webhook latency at 200 requests/s for 60 s, and losses
	$(BIN)/python bench/bench_webhook.py

bench-detect: $(STAMP)  ## detection benchmark: seeds' rules vs ours on simulated streams
	$(BIN)/python bench/bench_detect.py

notebooks: $(STAMP)  ## execute the jupytext notebooks (nbclient) and render them to build/notebooks/*.html
	$(BIN)/python notebooks/run.py

bench-network: $(STAMP)  ## network benchmark: 10 practices share a payer change; own vs pooled delays
	$(BIN)/python bench/bench_network.py

bench-event-alert: $(STAMP) $(NODE_STAMP)  ## signed EHR claim scoring HIGH → alert e-mail in the mailbox: p50/p95
	$(BIN)/python bench/bench_event_alert.py

bench-all: $(STAMP) $(NODE_STAMP)  ## every benchmark, one table, written to BENCHMARKS.md with the machine
	$(BIN)/python -u bench/bench_all.py

bench-risk: $(STAMP)  ## risk score: AUC and HIGH precision (rules vs calibrated) on later months, latency
	$(BIN)/python bench/bench_risk.py

clean: down
	rm -rf .upstream
