# The two commands of the README: `make up` and `make test`. Both create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# `make up` needs voicegate and its runtime dependencies; `make test` adds the dev extra (pytest,
# Playwright, schemathesis, pipecat-ai, ...), about twice the download and install time.
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: up test check lint format typecheck packages images test-compose clean

up: $(RUNTIME)
	$(BIN)/voicegate up

test: $(STAMP) packages check
	$(BIN)/python -m pytest

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian packages the tests drive (PostgreSQL 15, Chromium, curl): installed when missing.
packages:
	@bash .ci/ensure-packages

# The container image (Containerfile) and the tests' PostgreSQL 15 image, built with podman from a Debian base
# made with mmdebstrap: no registry needed (deploy/images.sh).
images:
	bash deploy/images.sh

# compose.yaml for real on those images (tests/e2e/test_compose.py): not part of `make test`, as it needs them.
test-compose: $(STAMP) images
	VOICEGATE_COMPOSE_E2E=1 $(BIN)/python -m pytest -v tests/e2e/test_compose.py

# $(call install,EXTRAS): make .venv if it is missing, then install voicegate (editable) with EXTRAS.
define install
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (python3.11 or python3 on PATH)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.$(1)'
endef

$(RUNTIME): pyproject.toml
	$(call install,)
	touch $(RUNTIME)

$(STAMP): pyproject.toml
	$(call install,[dev])
	touch $(STAMP) $(RUNTIME)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
