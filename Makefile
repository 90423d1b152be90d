# openhnv: `make demo` runs the seed's datacenter, `make test` runs every check.
# Both install what they need first (Debian packages, then this Python package).
SHELL := /bin/bash
PYTHON ?= python3
APT_PACKAGES := openvswitch-common iproute2 ethtool iperf3 tcpdump iputils-ping procps \
	clang libbpf-dev libbpf1 bpftool
# The gateway role: strongSwan (charon with kernel-libipsec, swanctl), nftables, conntrack.
# strongswan-charon pulls in strongswan-starter, whose service must not start in the root
# namespace: installed like openvswitch-switch below, with service starts forbidden.
GATEWAY_PACKAGES := strongswan-charon strongswan-swanctl libcharon-extra-plugins nftables conntrack
TIERS := tests/unit tests/fuzz tests/functional tests/integration
# The kernel fast path (openhnv.vswitch.fastpath): each attach point's C file compiled
# alone, then linked into the one object the Python loader opens.
BPF_DIR := src/openhnv/vswitch/bpf
BPF_OBJECT := $(BPF_DIR)/hnv_fastpath.o
BPF_BUILD := build/bpf
BPF_PARTS := $(BPF_BUILD)/tc_port.o $(BPF_BUILD)/tc_uplink.o $(BPF_BUILD)/socket_filter.o
BPF_CFLAGS := -O2 -g -target bpf -Wall -Wextra -Werror -I/usr/include/$(shell uname -m)-linux-gnu

.PHONY: deps apt-deps etcd-deps gateway-deps ovs-deps py-deps bpf lint typecheck test bench bench-smoke fuzz fuzz-smoke demo clean \
	schemathesis-long

deps: apt-deps etcd-deps gateway-deps bpf py-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# etcd-server runs the controller cluster's store in the tests, the benchmarks and
# `hnv lab up --controllers 3` (private members on loopback, started and stopped by pid).
# Its package would start a system-wide etcd, so it is installed with a policy-rc.d that
# forbids service starts (kept if one exists, else made for the install and removed).
etcd-deps:
	@dpkg-query -W -f='$${Status}' etcd-server 2>/dev/null | grep -q "install ok installed" || { \
	  echo "installing Debian package etcd-server (no services started)"; guard=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends etcd-server; rc=$$?; \
	  if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; }

# Only `make bench` needs ovs-vswitchd (bench/dataplane.py's OVS netdev run; without it
# that run reports "skipped"). Its package would start system-wide OVS daemons in the
# root namespace, so it is installed with a policy-rc.d that forbids service starts
# (kept if one exists, else made for the install and removed again).
ovs-deps:
	@dpkg-query -W -f='$${Status}' openvswitch-switch 2>/dev/null | grep -q "install ok installed" || { \
	  echo "installing Debian package openvswitch-switch (no services started)"; guard=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends openvswitch-switch; rc=$$?; \
	  if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; }

gateway-deps:
	@missing=$$(for p in $(GATEWAY_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (no services started): $$missing"; guard=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	  if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	fi

bpf: $(BPF_OBJECT)

$(BPF_BUILD)/%.o: $(BPF_DIR)/%.c $(BPF_DIR)/hnv.h | apt-deps
	@mkdir -p $(@D)
	clang $(BPF_CFLAGS) -c $< -o $@

$(BPF_OBJECT): $(BPF_PARTS)
	bpftool gen object $@ $^

.deps-stamp: pyproject.toml
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

py-deps: .deps-stamp

lint: py-deps
	$(PYTHON) -m ruff check src tests bench fuzz
	$(PYTHON) -m ruff format --check src tests bench fuzz

# tests/ and bench/ are checked as strictly as src/ (pyproject.toml [tool.mypy]).
typecheck: py-deps
	$(PYTHON) -m mypy src tests bench fuzz

# Each tier runs on its own; a tier whose files collect nothing fails (pytest exit 5).
# The root tier runs once per data path (HNV_TEST_FASTPATH, openhnv.testing.datapath_mode):
# auto (the kernel fast path where it can run) and off (the Python switch alone).
ROOT_TIER := tests/integration
ROOT_FASTPATH_MODES := auto off
test: deps lint typecheck
	@set -e; for tier in $(TIERS); do \
	  if ! ls $$tier/test_*.py >/dev/null 2>&1; then echo "== $$tier: no test modules"; \
	  elif [ "$$tier" = "$(ROOT_TIER)" ]; then \
	    for mode in $(ROOT_FASTPATH_MODES); do \
	      echo "== $$tier (HNV_TEST_FASTPATH=$$mode)"; \
	      HNV_TEST_FASTPATH=$$mode $(PYTHON) -m pytest -q $$tier; \
	    done; \
	  else echo "== $$tier"; $(PYTHON) -m pytest -q $$tier; fi; \
	done
	$(MAKE) --no-print-directory bench-smoke fuzz-smoke

# Benchmarks import openhnv (and its test support, openhnv.testing) like any user of the
# package; BENCH_ENV makes them, like pytest (pythonpath = src), use this checkout's copy.
BENCH_ENV := PYTHONPATH=src$(if $(PYTHONPATH),:$(PYTHONPATH))

bench-smoke: py-deps
	@set -eo pipefail; for b in bench/*.py; do \
	  [ -e "$$b" ] || continue; echo "== $$b --smoke"; \
	  $(BENCH_ENV) $(PYTHON) $$b --smoke | $(PYTHON) -m json.tool > /dev/null; \
	done

# The OpenAPI document against a real controller: schemathesis, every phase and check, 100
# examples per operation and a new seed each run (make test runs a short fixed-seed form,
# tests/functional/test_api_schemathesis.py). For the chaos run.
schemathesis-long: py-deps
	$(BENCH_ENV) $(PYTHON) tests/functional/schemathesis_run.py --long

bench: deps ovs-deps
	@set -e; for b in bench/*.py; do echo "== $$b"; $(BENCH_ENV) $(PYTHON) $$b; done

# Fuzzing (docs/testing.md): every parser's fuzz target for FUZZ_SECONDS each (atheris when
# installed), then random datacenters against the isolation oracle for as long, then the
# hypothesis form with FUZZ_EXAMPLES inputs per target. make test runs the short forms.
FUZZ_SECONDS ?= 300
FUZZ_EXAMPLES ?= 20000

fuzz: py-deps
	$(BENCH_ENV) $(PYTHON) fuzz/run.py --seconds $(FUZZ_SECONDS)
	$(BENCH_ENV) $(PYTHON) fuzz/isolation.py --seconds $(FUZZ_SECONDS)
	HNV_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest -q tests/fuzz/test_fuzz_targets.py

fuzz-smoke: py-deps
	@set -eo pipefail; echo "== fuzz/run.py --smoke"; \
	$(BENCH_ENV) $(PYTHON) fuzz/run.py --smoke --engine builtin | $(PYTHON) -m json.tool >/dev/null; \
	echo "== fuzz/isolation.py --smoke"; \
	$(BENCH_ENV) $(PYTHON) fuzz/isolation.py --smoke | $(PYTHON) -m json.tool > /dev/null

demo: deps
	$(PYTHON) -m openhnv demo

clean:
	-$(PYTHON) -m openhnv lab clean
	rm -rf $(BPF_BUILD) $(BPF_OBJECT)
	rm -rf .deps-stamp .mypy_cache .pytest_cache .ruff_cache .hypothesis
