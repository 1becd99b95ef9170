# nb-evidence: `make evidence` and `make test` each do all the set-up they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | sha256sum | cut -c1-12)
SPEC ?= manifests/cli-flags-003-phase-j.toml

.PHONY: setup evidence test bench replay clean help

help:
	@echo "make setup     create .venv with nb-evidence and its pinned dependencies"
	@echo "make evidence  capture the supervisor spec with the bundled minibragg pair (container when a Docker engine answers)"
	@echo "make test      run the test suite"
	@echo "make bench     print measured speed and memory figures"
	@echo "make replay BUNDLE=bundles/<id>  re-run a bundle"
	@echo "make base-image / wheels / image / image-cuda  container images"

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $@

evidence: setup
	@PY=$(PY) SPEC=$(SPEC) bash scripts/evidence.sh

# When a Docker engine answers, the container tests run against the real image: make it first
# (wheels, local base, build; seconds when it is already there).
test: setup
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; \
	else echo "make test: no Docker engine answers; the container tests will skip"; fi
	$(PY) -m pytest -q -n 2 --dist loadgroup

bench: setup
	$(PY) bench/run.py

replay: setup
	@test -n "$(BUNDLE)" || { echo "usage: make replay BUNDLE=bundles/<id>" >&2; exit 2; }
	$(VENV)/bin/nb-evidence replay $(BUNDLE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

-include mk/container.mk
