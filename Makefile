# Host Checker: the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
UI_DIR := frontend
UI_SOURCES := $(shell find $(UI_DIR)/src $(UI_DIR)/public -type f ! -name '*.test.*' ! -path '*/src/test/*' 2>/dev/null) \
              $(wildcard $(UI_DIR)/index.html $(UI_DIR)/vite.config.* $(UI_DIR)/tsconfig*.json $(UI_DIR)/package.json)

.PHONY: help run up down logs status test test-unit lint lock ui deploy-local migrate clean venv system-packages bench \
        images up-docker down-docker logs-docker

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_STAMP): requirements.txt requirements-agent.txt requirements-dev.txt pyproject.toml
	@echo "==> Python virtualenv ($(VENV)) with the hash-pinned requirements-dev.txt"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed as $(PYTHON)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "!! cannot create a virtualenv: apt-get install -y python3-venv"; exit 1; }
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .  # the hostchecker CLI (pyproject.toml)
	@touch $@

venv: $(VENV_STAMP) ## create .venv from the hash-pinned requirements-dev.txt (only when it changed)

# requirements*.in are edited by hand; `make lock` resolves them into the hash-pinned requirements*.txt.
# The bundle's and the agent's locks take their versions from the dev lock, so the venv runs what ships.
LOCK = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
       --custom-compile-command "make lock" $(LOCK_FLAGS)

lock: $(VENV_STAMP) ## rewrite requirements*.txt from requirements*.in (LOCK_FLAGS=--upgrade for newer releases)
	$(LOCK) -o requirements-dev.txt requirements-dev.in
	$(LOCK) -o requirements.txt -c requirements-dev.txt requirements.in
	$(LOCK) -o requirements-agent.txt -c requirements-dev.txt requirements-agent.in
	$(LOCK) -o localstack/docker/requirements-api.txt -c requirements-dev.txt localstack/docker/requirements-api.in

system-packages: $(VENV_STAMP)
	@$(PY) -m scripts.packages

$(UI_DIR)/node_modules/.installed: $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	@echo "==> UI dependencies (npm ci)"
	@cd $(UI_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_DIR)/dist/index.html: $(UI_DIR)/node_modules/.installed $(UI_SOURCES)
	@echo "==> building the UI (vite)"
	@cd $(UI_DIR) && npm run build --silent

ui: ## build the UI, only when its sources changed
	@if [ -f $(UI_DIR)/package.json ]; then $(MAKE) --no-print-directory $(UI_DIR)/dist/index.html; else echo "==> UI: no frontend/package.json yet; skipped"; fi

run: $(VENV_STAMP) ui ## bring up the whole local stack in the foreground; Ctrl-C stops it
	@$(PY) -m scripts.stack run

up: $(VENV_STAMP) ui ## the same stack in the background; returns when healthy, writes .local/stack.env
	@$(PY) -m scripts.stack up

down: ## stop everything this checkout's `make up`/`make run` started (nothing of another checkout)
	@if [ -x $(PY) ]; then $(PY) -m scripts.stack down; else echo "nothing to stop"; fi

status: ## what is running
	@$(PY) -m scripts.stack status

logs: ## follow the stack's logs
	@$(PY) -m scripts.stack logs

migrate: $(VENV_STAMP) ## apply the database migrations to the database in DATABASE_URL
	@$(PY) -m scripts.migrate

deploy-local: $(VENV_STAMP) ui ## deploy the local half (S3 website, secrets, schedule) to a running LocalStack
	@set -a; source .local/stack.env; set +a; $(PY) -m scripts.deploy_local --endpoint-url "$${LOCALSTACK_URL:-http://127.0.0.1:4566}" --stage local --ui-dir $(UI_DIR)/dist --api-url "$$API_URL"

lint: $(VENV_STAMP) $(if $(wildcard $(UI_DIR)/package.json),$(UI_DIR)/node_modules/.installed) ## ruff check + ruff format --check (Python); eslint + tsc --noEmit (UI)
	@rc=0; \
	echo "==> lint: ruff check"; $(VENV)/bin/ruff check --quiet --output-format concise . || rc=1; \
	echo "==> lint: ruff format --check"; $(VENV)/bin/ruff format --check --quiet --output-format concise . || rc=1; \
	if [ -f $(UI_DIR)/package.json ]; then \
	  echo "==> lint: eslint"; (cd $(UI_DIR) && npm run --silent lint) || rc=1; \
	  echo "==> lint: tsc --noEmit"; (cd $(UI_DIR) && npm run --silent typecheck) || rc=1; \
	fi; \
	exit $$rc

test: $(VENV_STAMP) ui lint ## install what is missing, lint, then run every test: vitest, unit, localcloud, integration, e2e
	@$(PY) -m scripts.packages --browser
	@if [ -f $(UI_DIR)/package.json ]; then echo "==> UI component tests (vitest)"; cd $(UI_DIR) && npm test --silent; fi
	@echo "==> pytest: unit, localcloud, integration, e2e"
	@$(PY) -m pytest

test-unit: $(VENV_STAMP) ## only the tests that need no servers
	@$(PY) -m pytest tests/unit

# Speed targets live here, never in make test (bench/README.md). S=3 (or S=1,9) runs only those scenarios.
bench: $(VENV_STAMP) ## run the benchmarks against this checkout's make up stack (brought up if need be); S=N for one
	@$(PY) -m scripts.packages --bench
	@$(PY) -m bench $(if $(S),--scenario $(S))

clean: ## stop this checkout's stacks and remove its local state (.local/, and its PostgreSQL data kept outside it)
	@if [ -x $(PY) ]; then $(PY) -m scripts.stack clean; fi
	rm -rf .local

# The compose stack (localstack/docker/): images from a Debian base we bootstrap ourselves, cached by content hash.
DOCKER_DIR := localstack/docker

images: $(VENV_STAMP) ui ## build the compose stack's images (as root: installs and starts dockerd if needed)
	@$(PY) $(DOCKER_DIR)/engine.py start
	@$(PY) $(DOCKER_DIR)/images.py

up-docker: images ## the whole stack as containers (localstack/docker-compose.yml); writes .local/docker/stack.env
	@$(PY) $(DOCKER_DIR)/stack.py up

down-docker: ## stop the compose stack; its volumes stay (VOLUMES=1 removes them too)
	@$(PY) $(DOCKER_DIR)/stack.py down $(if $(VOLUMES),--volumes)

logs-docker: ## the compose stack's logs
	@$(PY) $(DOCKER_DIR)/stack.py compose logs --tail 100
