# seghandwriting — every target works with Docker Compose (when an engine answers) or as a
# local stack of plain processes (no Docker, or STACK=local).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SEGHW := $(VENV)/bin/seghw
STAMP := $(VENV)/.installed
ARGS ?=
RUN ?= latest
export STACK

.DEFAULT_GOAL := help
.PHONY: help setup tools base-images realset test lint up down train stop status logs demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[cpu,local,dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with the CPU dependencies

tools: ## Install what the tests need beside .venv (chromium, Docker, Compose v2...; apt-get as root)
	@$(PYTHON) scripts/install_tools.py

base-images: $(STAMP) ## Build stand-in base images from Debian packages (machines without a registry)
	$(PY) -m seghw.stack.base_images

test: $(STAMP) tools ## Run the whole test suite, the compose tier included (sets up first if needed)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, compose schema, hadolint, docker-compose config
	$(VENV)/bin/ruff check .
	$(PY) -m seghw.stack.lint

up: $(STAMP) ## Start the stack (Docker Compose, or local processes)
	$(SEGHW) stack up

down: $(STAMP) ## Stop the stack and everything it started
	$(SEGHW) stack down

train: $(STAMP) ## Queue a training run: make train ARGS="--preset cpu-demo --synthetic 64"
	$(SEGHW) stack submit $(ARGS)

stop: $(STAMP) ## Ask a run to stop gracefully: make stop RUN=logs_MMDDHHMM
	$(SEGHW) stack stop $(RUN)

status: $(STAMP) ## Health of every run (exit 0 healthy, 1 warning, 2 no data)
	$(SEGHW) stack status $(ARGS)

logs: $(STAMP) ## Follow the stack's logs
	$(SEGHW) stack logs

demo: $(STAMP) ## Set up, start the local stack, train a short CPU demo, show status
	$(SEGHW) stack demo

realset: $(STAMP) ## Build the real-source evaluation set in build/realset (installs poppler-utils, npm as root)
	@$(PYTHON) scripts/install_tools.py realset
	$(PY) scripts/build_realset.py

bench: $(STAMP) ## Measure speed and quality, write docs/BENCHMARKS.md
	@$(PYTHON) scripts/install_tools.py realset --for "make bench"
	$(PY) -m scripts.bench

clean: ## Remove the virtualenv and local run data
	rm -rf $(VENV) .stack build
