# gt_widget: every command a developer or CI needs. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.stamp-setup
# Evaluation material lives beside the checkout (never copied in); tests and benchmarks use it when present.
SHARED ?= $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/models/mobile_sam.pt),)
export GT_WIDGET_WEIGHTS ?= $(SHARED)/models/mobile_sam.pt
endif
export GT_WIDGET_SHARED ?= $(SHARED)

.PHONY: setup system-deps demo demo-headless weights test lint typecheck pytest jstest bench clean

setup: $(VENV_STAMP)

# Debian packages: Chromium (browser tests, template preview) and Node.js >= 18 (node --test for js/).
# Each is installed only when missing.
system-deps:
	@pkgs=""; \
	[ -x /usr/bin/chromium ] || pkgs="$$pkgs chromium"; \
	command -v node >/dev/null || pkgs="$$pkgs nodejs"; \
	if [ -n "$$pkgs" ]; then \
	  echo "installing (apt):$$pkgs"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$pkgs >/dev/null; \
	fi

$(VENV_STAMP): pyproject.toml | system-deps
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a range would let pip pull a CUDA build of several GB.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

weights: setup
	$(PY) -m gt_widget.cli weights fetch

# Copies the quickstart and its images to ./gt-widget-demo and opens JupyterLab on 127.0.0.1 there.
demo: setup weights
	$(PY) -m gt_widget.cli demo

demo-headless: setup weights
	$(PY) -m gt_widget.cli demo --headless

lint: setup
	.venv/bin/ruff check gt_widget tests benchmarks
	.venv/bin/ruff format --check gt_widget tests benchmarks

typecheck: setup
	.venv/bin/mypy

pytest: setup
	$(PY) -m pytest

jstest:
	node --test js/test/

test: setup lint typecheck jstest pytest

bench: setup
	$(PY) -m benchmarks.run_all

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
