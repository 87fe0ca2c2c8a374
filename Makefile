# Build, test, install and demo terraform-provider-azurecmk; README.md explains each target.
# The logic lives in scripts/ so these recipes stay one line each.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
# release or debug: which build `make install` copies.
PROFILE ?= release
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
PLATFORM ?= linux_amd64
PLUGIN_DIR := $(HOME)/.terraform.d/plugins/registry.terraform.io/azurecmk/azurecmk/$(VERSION)/$(PLATFORM)

.PHONY: build test test-only fmt-check lint demo install terraform clean distclean

## build: compile the provider and the simulator (debug)
build:
	$(CARGO) build --workspace

## test: every test (nextest when installed), then the format check
test: test-only fmt-check

test-only: terraform
	CARGO="$(CARGO)" scripts/run-tests.sh

fmt-check:
	$(CARGO) fmt --all -- --check

## lint: clippy on every target with warnings as errors, and the format check
lint: fmt-check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## demo: apply examples/scenarios/two-tenants against the simulator, show the protector, destroy
demo:
	scripts/demo.sh

## install: put the provider where terraform's implied local mirror finds it
install:
	$(CARGO) build $(if $(filter release,$(PROFILE)),--release) --bin terraform-provider-azurecmk
	mkdir -p "$(PLUGIN_DIR)"
	install -m 0755 "$(TARGET_DIR)/$(PROFILE)/terraform-provider-azurecmk" \
		"$(PLUGIN_DIR)/terraform-provider-azurecmk_v$(VERSION)"
	@echo "installed $(PLUGIN_DIR)/terraform-provider-azurecmk_v$(VERSION)"

## terraform: print the terraform the tests use, installing 1.0.3 into .venv/ if none is on PATH
terraform:
	@echo "terraform: $$(scripts/ensure-terraform.sh)"

## clean: remove build output and the demo's leftovers
clean:
	$(CARGO) clean
	rm -rf .demo

## distclean: clean, and also remove the project-local terraform in .venv/
distclean: clean
	rm -rf .venv
