# Parta: `make run` starts the platform on this machine, `make test` runs the whole suite.
# Both set up everything they need (venv, packages, Debian's Chromium for browser tests).

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The stamp names the pyproject's hash, so an edited dependency list reinstalls.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export PYTHONPATH := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run run-workers test lint typecheck unit venv chromium coturn nheko bench catalogue clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q -e '.[module,sfu,bridge,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Browser tests use Debian's chromium (test tools cannot download their own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Call tests relay media through Debian's coturn, started by the tests on loopback; the
# package's own service must not start (policy-rc.d refuses it while installing).
coturn:
	@command -v turnserver >/dev/null 2>&1 || { \
	  echo "Installing Debian's coturn for the call tests (its service stays off)"; \
	  made=; [ -e /usr/sbin/policy-rc.d ] || { \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null; \
	  status=$$?; [ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; }

# The real-client journey (tests/test_nheko.py) drives Debian's nheko under Xvfb:
# xdotool types, xclip pastes Cyrillic, ImageMagick takes screenshots, gnome-keyring
# (inside a private D-Bus session) holds nheko's secrets.
NHEKO_PACKAGES := nheko xvfb xdotool xclip imagemagick dbus-x11 gnome-keyring
nheko:
	@command -v nheko >/dev/null 2>&1 && command -v Xvfb >/dev/null 2>&1 \
	  && command -v xdotool >/dev/null 2>&1 && command -v xclip >/dev/null 2>&1 \
	  && command -v import >/dev/null 2>&1 && command -v gnome-keyring-daemon >/dev/null 2>&1 || { \
	  echo "Installing Debian's nheko and X tools for the real-client test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NHEKO_PACKAGES) >/dev/null; }

# docker-compose.yml is validated by Debian's docker-compose (`config` needs no engine).
compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "Installing Debian's docker-compose to validate docker-compose.yml"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

run: venv
	$(BIN)/python -m devtools.run

# Synapse as main + workers over Redis and PostgreSQL (docs/deploy.md); data in var-workers/.
run-workers: venv
	PARTA_VAR=$${PARTA_VAR:-$(CURDIR)/var-workers} $(BIN)/python -m devtools.run --workers

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: venv chromium coturn nheko compose lint typecheck
	PARTA_REQUIRE_TOOLS=1 $(BIN)/pytest $(PYTEST_ARGS)

# `make bench` lists the measurements; `make bench NAME=sfu_forwarding` runs one.
bench: venv
	$(BIN)/python -m bench $(NAME)

# Texts people read: parta_common/locale/*.po → the JSON the code and pages read (docs/i18n.md).
catalogue: venv
	$(BIN)/python -m devtools.catalogue

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
