# paasta_lite developer targets. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
USER ?= $(shell id -un)
export USER

PLAYGROUND_CLUSTER ?= kind-$(USER)-k8s-test
PLAYGROUND_ETC := $(CURDIR)/etc_paasta_playground
PLAYGROUND_SOA := $(CURDIR)/soa_config_playground
PLAYGROUND_ENV := PAASTA_SYSTEM_CONFIG_DIR=$(PLAYGROUND_ETC) PAASTA_SOA_DIR=$(PLAYGROUND_SOA)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets with one line each
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-28s\033[0m %s\n", $$1, $$2}'

.PHONY: dev
dev: $(VENV)/.installed ## Create the virtualenv (.venv) with paasta_lite and its test/lint tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

.PHONY: test
test: dev ## Run the unit tests (no cluster needed)
	$(BIN)/python -m pytest tests

.PHONY: lint
lint: dev ## ruff and mypy
	$(BIN)/ruff check paasta_lite tests k8s_itests bench
	$(BIN)/mypy

.PHONY: bench
bench: dev ## Benchmarks (numbers go into the closing notes)
	$(BIN)/python bench/bench_config.py

.PHONY: playground-configs
playground-configs: dev ## Create etc_paasta_playground/ and soa_config_playground/ from templates (if missing)
	$(BIN)/python playground/make_playground.py configs --cluster $(PLAYGROUND_CLUSTER)

.PHONY: playground
playground: playground-configs ## The main job: playground configs, validated and listed
	$(PLAYGROUND_ENV) $(BIN)/paasta validate --all
	$(PLAYGROUND_ENV) $(BIN)/paasta list -i

.PHONY: clean-playground
clean-playground: ## Remove the generated playground configs
	find etc_paasta_playground soa_config_playground -mindepth 1 ! -name README.md -exec rm -rf {} +

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
