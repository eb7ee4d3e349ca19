# paasta_lite developer targets. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
USER := $(or $(USER),$(shell id -un))
export USER

# --- playground names and pins (docs/playground.md) ------------------------------------------
# kind is an external binary: the playground is tested with this version and this node image
# (from the kind release notes; pinned by digest, as kind asks). Override on the command line.
KIND_VERSION ?= v0.31.0
KIND_NODE_IMAGE ?= kindest/node:v1.31.14@sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b
# $USER as kind and Kubernetes accept it (lower case letters, digits, '-').
PLAYGROUND_USER := $(shell printf '%s' '$(USER)' | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9-' '-')
KIND_CLUSTER_NAME ?= $(PLAYGROUND_USER)-k8s-test
PLAYGROUND_CLUSTER ?= kind-$(KIND_CLUSTER_NAME)
KIND_CONFIG := $(CURDIR)/k8s_itests/kind-cluster.yaml
KIND_KUBECONFIG := $(CURDIR)/k8s_itests/kubeconfig
export KIND_VERSION KIND_NODE_IMAGE KIND_CLUSTER_NAME PLAYGROUND_CLUSTER KIND_CONFIG KIND_KUBECONFIG
PLAYGROUND_ETC := $(CURDIR)/etc_paasta_playground
PLAYGROUND_SOA := $(CURDIR)/soa_config_playground
PLAYGROUND_ENV := PAASTA_SYSTEM_CONFIG_DIR=$(PLAYGROUND_ETC) PAASTA_SOA_DIR=$(PLAYGROUND_SOA)
PLAYGROUND := $(BIN)/python playground/make_playground.py
KIND_SH := bash playground/scripts/kind-cluster.sh
# The kubeconfig every cluster target uses: your KUBECONFIG when its cluster answers, else the
# Kind cluster's. Worked out on first use only (it probes the cluster), then reused.
PLAYGROUND_KUBECONFIG = $(eval PLAYGROUND_KUBECONFIG := $$(shell $(PLAYGROUND) kubeconfig))$(PLAYGROUND_KUBECONFIG)
PLAYGROUND_RUN = KUBECONFIG=$(PLAYGROUND_KUBECONFIG) $(PLAYGROUND_ENV)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets with one line each
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-34s\033[0m %s\n", $$1, $$2}'

.PHONY: dev
dev: $(VENV)/.installed ## Create the virtualenv (.venv) with paasta_lite and its test/lint tools

# Every package comes from requirements.lock (exact versions and hashes); the project itself is
# installed on top without resolving anything, so what is tested is what the lock says.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check --disable-pip-version-check
	touch $@

LOCK_ARGS := pyproject.toml --all-extras --universal --python-version 3.10 --generate-hashes -o requirements.lock

.PHONY: lock
lock: dev ## Refresh requirements.lock to the newest versions pyproject.toml allows (then run make test)
	$(BIN)/uv pip compile $(LOCK_ARGS) --upgrade --quiet
	rm -f $(VENV)/.installed
	@echo "requirements.lock refreshed: review git diff requirements.lock, then make test"

.PHONY: lock-check
lock-check: dev ## Fail when requirements.lock no longer satisfies pyproject.toml (no upgrades)
	$(BIN)/uv pip compile $(LOCK_ARGS) --quiet --output-file /dev/stdout | diff -q requirements.lock - >/dev/null || \
		{ echo "requirements.lock is out of date with pyproject.toml: run make lock" >&2; exit 1; }

LATEST_VENV := .venv-latest

.PHONY: test-latest
test-latest: ## Tests against the newest versions pyproject.toml allows (not CI: shows drift before the lock adopts it)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST_VENV)/bin/python -m pip list --disable-pip-version-check --format=freeze
	$(LATEST_VENV)/bin/python -m pytest tests playground/tests

.PHONY: test
test: lint unit ## What CI runs: lint, then the unit tests (no cluster needed)

.PHONY: unit
unit: dev ## The unit tests alone (tests/, playground/tests/; no cluster needed)
	$(BIN)/python -m pytest tests playground/tests

.PHONY: lint
lint: dev ## ruff and mypy
	$(BIN)/ruff check paasta_lite tests k8s_itests bench playground
	$(BIN)/mypy

.PHONY: bench
bench: dev ## Benchmarks: config load, render, reconcile against the fake API server, CLI start-up and TAB
	$(BIN)/python bench/bench_config.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_reconcile.py
	$(BIN)/python bench/bench_startup.py

.PHONY: playground-configs
playground-configs: dev ## Create etc_paasta_playground/ and soa_config_playground/ from templates (if missing)
	$(BIN)/python playground/make_playground.py configs --cluster $(PLAYGROUND_CLUSTER)

.PHONY: playground
playground: dev ## The main command: configs, git repos, deployments.json, validate, render; with a cluster also image, deploy, paasta status
	@$(PLAYGROUND) up

# --- cluster -------------------------------------------------------------------------------
.PHONY: k8s_fake_cluster
k8s_fake_cluster: dev ## Kind cluster $USER-k8s-test, kubeconfig k8s_itests/kubeconfig (idempotent; your KUBECONFIG if it answers)
	@$(PLAYGROUND) kubeconfig --announce-user-cluster || $(KIND_SH) create
	@$(PLAYGROUND) kubeconfig --check

.PHONY: k8s_recreate_cluster
k8s_recreate_cluster: dev ## Delete and re-create the Kind cluster
	$(KIND_SH) delete
	$(KIND_SH) create
	@KUBECONFIG= $(PLAYGROUND) kubeconfig --check

.PHONY: k8s_clean
k8s_clean: ## Delete the Kind cluster and k8s_itests/kubeconfig
	$(KIND_SH) delete

.PHONY: k8s-check-tools
k8s-check-tools: ## Check that docker (or podman) answers and kind is installed; print the fix if not
	$(KIND_SH) check

# --- the production stages, run by hand ------------------------------------------------------
.PHONY: playground-repos
playground-repos: dev ## Configs, plus a local git repo with a deploy tag per deploy group under playground_repos/
	$(PLAYGROUND) repos --cluster $(PLAYGROUND_CLUSTER)

# One service never stops the others: each runs on its own, failures are named at the end (exit 1).
# A service without git_url is skipped with one line: its hand-written deployments.json is used.
.PHONY: generate_deployments_for_service
generate_deployments_for_service: playground-repos ## Write deployments.json from git tags for every service with a git_url (others keep theirs)
	@$(PLAYGROUND) require generate_deployments_for_service
	$(PLAYGROUND_ENV) $(PLAYGROUND) generate

# What setup and image need first: the same, but a service that fails there is reported and
# the others still go on to be deployed (setup_kubernetes_job reports that service again).
.PHONY: playground-generated
playground-generated: playground-repos
	@$(PLAYGROUND) require generate_deployments_for_service
	-$(PLAYGROUND_ENV) $(PLAYGROUND) generate

.PHONY: playground-validate
playground-validate: playground-configs ## paasta validate --all on the playground configs
	$(PLAYGROUND_ENV) $(BIN)/paasta validate --all

.PHONY: playground-render
playground-render: playground-configs ## paasta render of every playground service: the full YAML setup would apply (no cluster)
	@$(PLAYGROUND) require "paasta render"
	$(PLAYGROUND_ENV) $(PLAYGROUND) render --cluster $(PLAYGROUND_CLUSTER)

.PHONY: playground-render-summary
playground-render-summary: playground-configs ## One line per object paasta render would apply: kind, namespace/name, replicas, image
	@$(PLAYGROUND) require "paasta render"
	$(PLAYGROUND_ENV) $(PLAYGROUND) render --summary --cluster $(PLAYGROUND_CLUSTER)

.PHONY: playground-image
playground-image: k8s_fake_cluster playground-generated ## Build the deployed images of the sample services and load them into Kind
	$(PLAYGROUND_ENV) $(PLAYGROUND) image

.PHONY: setup-kubernetes-job
setup-kubernetes-job: k8s_fake_cluster playground-generated ## Reconcile every playground instance into the cluster
	@$(PLAYGROUND) require setup_kubernetes_job
	$(PLAYGROUND_RUN) $(BIN)/setup_kubernetes_job -d $(PLAYGROUND_SOA) -c $(PLAYGROUND_CLUSTER) -v

.PHONY: cleanup-kubernetes-jobs
cleanup-kubernetes-jobs: k8s_fake_cluster ## Delete apps no longer in soa_config_playground/ (--force, as PaaSTA's target)
	@$(PLAYGROUND) require cleanup_kubernetes_jobs
	$(PLAYGROUND_RUN) $(BIN)/cleanup_kubernetes_jobs -d $(PLAYGROUND_SOA) -c $(PLAYGROUND_CLUSTER) --force

.PHONY: playground-deployd
playground-deployd: k8s_fake_cluster playground-generated ## Run paasta_deployd in the foreground: soa_config_playground/ edits and kubectl drift are reconciled in seconds (Ctrl-C stops)
	@$(PLAYGROUND) require paasta_deployd
	$(PLAYGROUND_RUN) $(BIN)/paasta_deployd -d $(PLAYGROUND_SOA) -c $(PLAYGROUND_CLUSTER) --metrics-port 0 --metrics-host 127.0.0.1

.PHONY: playground-wait
playground-wait: dev ## Wait until every playground service is healthy, then show paasta status
	@$(PLAYGROUND) require "paasta status"
	$(PLAYGROUND_RUN) $(PLAYGROUND) wait

.PHONY: playground-api
playground-api: playground-configs ## Run the API in the foreground (stable per-user port, written to api_endpoints.json)
	@$(PLAYGROUND) require paasta_api
	trap '$(PLAYGROUND) forget-api' EXIT; \
	$(PLAYGROUND_RUN) $(BIN)/paasta_api -c $(PLAYGROUND_CLUSTER) -d $(PLAYGROUND_SOA)

.PHONY: playground-forget-api
playground-forget-api: dev ## Remove a stale API URL from etc_paasta_playground/api_endpoints.json
	$(PLAYGROUND) forget-api

.PHONY: playground-status
playground-status: dev ## What is ready and what is missing, each with the command that fixes it
	@$(PLAYGROUND) status

.PHONY: playground-env
playground-env: ## Print exports for your shell: eval "$(make -s playground-env)"
	@$(if $(wildcard $(BIN)/python),$(PLAYGROUND),$(PYTHON) playground/make_playground.py) env

.PHONY: k8s_itests
k8s_itests: dev k8s_fake_cluster ## End-to-end tests against the playground cluster (tox -e k8s_itests: your KUBECONFIG only)
	KUBECONFIG=$(PLAYGROUND_KUBECONFIG) $(BIN)/python -m pytest k8s_itests

.PHONY: clean-playground
clean-playground: ## Remove the generated playground configs and playground_repos/ (not the cluster: make k8s_clean)
	find etc_paasta_playground soa_config_playground -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf playground_repos

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
