# openhnv: `make demo` runs the seed's datacenter, `make test` runs every check.
# Both install what they need first (Debian packages, then this Python package).
SHELL := /bin/bash
PYTHON ?= python3
APT_PACKAGES := openvswitch-common iproute2 ethtool iperf3 tcpdump iputils-ping procps
TIERS := tests/unit tests/functional tests/integration

.PHONY: deps apt-deps py-deps lint typecheck test bench bench-smoke demo clean

deps: apt-deps py-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

.deps-stamp: pyproject.toml
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

py-deps: .deps-stamp

lint: py-deps
	$(PYTHON) -m ruff check src tests bench
	$(PYTHON) -m ruff format --check src tests bench

typecheck: py-deps
	$(PYTHON) -m mypy src

# Each tier runs on its own; a tier whose files collect nothing fails (pytest exit 5).
test: deps lint typecheck
	@set -e; for tier in $(TIERS); do \
	  if ls $$tier/test_*.py >/dev/null 2>&1; then \
	    echo "== $$tier"; $(PYTHON) -m pytest -q $$tier; \
	  else echo "== $$tier: no test modules"; fi; \
	done
	$(MAKE) --no-print-directory bench-smoke

bench-smoke: py-deps
	@set -eo pipefail; for b in bench/*.py; do \
	  [ -e "$$b" ] || continue; echo "== $$b --smoke"; $(PYTHON) $$b --smoke | $(PYTHON) -m json.tool > /dev/null; \
	done

bench: deps
	@set -e; for b in bench/*.py; do echo "== $$b"; $(PYTHON) $$b; done

demo: deps
	$(PYTHON) -m openhnv demo

clean:
	-$(PYTHON) -m openhnv lab clean
	rm -rf .deps-stamp .mypy_cache .pytest_cache .ruff_cache .hypothesis
