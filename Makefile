# openhnv: `make demo` runs the seed's datacenter, `make test` runs every check.
# Both install what they need first (Debian packages, then this Python package).
SHELL := /bin/bash
PYTHON ?= python3
APT_PACKAGES := openvswitch-common iproute2 ethtool iperf3 tcpdump iputils-ping procps busybox isc-dhcp-client \
	clang libbpf-dev libbpf1 bpftool
# The gateway role: strongSwan (charon with kernel-libipsec, swanctl), nftables, conntrack.
# strongswan-charon pulls in strongswan-starter, whose service must not start in the root
# namespace: installed with service starts forbidden (install_without_services below).
GATEWAY_PACKAGES := strongswan-charon strongswan-swanctl libcharon-extra-plugins nftables conntrack
TIERS := tests/unit tests/fuzz tests/functional tests/integration tests/chaos
# The kernel fast path (openhnv.vswitch.fastpath): each attach point's C file compiled
# alone, then linked into the one object the Python loader opens.
BPF_DIR := src/openhnv/vswitch/bpf
BPF_OBJECT := $(BPF_DIR)/hnv_fastpath.o
BPF_BUILD := build/bpf
BPF_PARTS := $(BPF_BUILD)/tc_port.o $(BPF_BUILD)/tc_uplink.o $(BPF_BUILD)/socket_filter.o \
	$(BPF_BUILD)/xdp_port.o
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Wextra -Werror -I/usr/include/$(shell uname -m)-linux-gnu

.PHONY: deps apt-deps etcd-deps gateway-deps ovs-deps py-deps bpf lint typecheck test bench bench-smoke fuzz fuzz-smoke chaos demo clean \
	chaos-faults schemathesis-long root-long

deps: apt-deps etcd-deps gateway-deps bpf py-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Packages whose services must not start in the root namespace (etcd-server,
# openvswitch-switch, strongswan-starter) are installed with a policy-rc.d that forbids
# service starts: kept if one exists, else made for the install and removed again.
define install_without_services
guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends $(1); rc=$$?; \
if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc
endef

# etcd-server runs the controller cluster's store in the tests, the benchmarks and
# `hnv lab up --controllers 3` (private members on loopback, started and stopped by pid).
etcd-deps:
	@dpkg-query -W -f='$${Status}' etcd-server 2>/dev/null | grep -q "install ok installed" || { \
	  echo "installing Debian package etcd-server (no services started)"; \
	  $(call install_without_services,etcd-server); }

# Only `make bench` needs ovs-vswitchd (bench/dataplane.py's OVS netdev run; without it
# that run reports "skipped").
ovs-deps:
	@dpkg-query -W -f='$${Status}' openvswitch-switch 2>/dev/null | grep -q "install ok installed" || { \
	  echo "installing Debian package openvswitch-switch (no services started)"; \
	  $(call install_without_services,openvswitch-switch); }

gateway-deps:
	@missing=$$(for p in $(GATEWAY_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (no services started): $$missing"; \
	  $(call install_without_services,$$missing); \
	fi

bpf: $(BPF_OBJECT)

$(BPF_BUILD)/%.o: $(BPF_DIR)/%.c $(BPF_DIR)/hnv.h $(BPF_DIR)/qos.h | apt-deps
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
# The unit and functional tiers run on PYTEST_WORKERS processes (pytest-xdist; their tests
# share nothing but the machine). The root tier runs once per data path
# (HNV_TEST_FASTPATH, openhnv.testing.datapath_mode): auto (the kernel fast path where it
# can run) in full, then off (the Python switch alone) for the tests whose hosts follow
# the mode (-m datapath; the plugin fails a test that reads the mode unmarked). Both
# passes leave out the long variants (marker long), the off pass also the datapath tests
# whose point is no data path (marker one_pass); make chaos runs them (root-long). The type
# check runs beside the root tier, which mostly waits on namespaces and daemons; its
# output comes after the tier's, and a type error fails make test as before.
ROOT_TIER := tests/integration
PARALLEL_TIERS := tests/unit tests/functional
PYTEST_WORKERS ?= 2
DATAPATH_MARKER := datapath
LONG_MARKER := long
ONE_PASS_MARKER := one_pass
OFF_PASS := $(DATAPATH_MARKER) and not $(LONG_MARKER) and not $(ONE_PASS_MARKER)
TYPECHECK_LOG := build/typecheck.log
test: deps lint
	@set -e; typecheck=; mkdir -p $(dir $(TYPECHECK_LOG)); \
	for tier in $(TIERS); do \
	  if ! ls $$tier/test_*.py >/dev/null 2>&1; then echo "== $$tier: no test modules"; \
	  elif [ "$$tier" = "$(ROOT_TIER)" ]; then \
	    $(MAKE) --no-print-directory typecheck > $(TYPECHECK_LOG) 2>&1 & typecheck=$$!; \
	    echo "== $$tier (HNV_TEST_FASTPATH=auto; make typecheck beside it, pid $$typecheck)"; \
	    HNV_TEST_FASTPATH=auto $(PYTHON) -m pytest -q -m "not $(LONG_MARKER)" $$tier; \
	    echo "== $$tier -m '$(OFF_PASS)' (HNV_TEST_FASTPATH=off)"; \
	    HNV_TEST_FASTPATH=off $(PYTHON) -m pytest -q -m "$(OFF_PASS)" $$tier; \
	    echo "== typecheck"; \
	    if wait $$typecheck; then cat $(TYPECHECK_LOG); \
	    else cat $(TYPECHECK_LOG); exit 1; fi; \
	  elif [[ " $(PARALLEL_TIERS) " == *" $$tier "* ]]; then \
	    echo "== $$tier (-n $(PYTEST_WORKERS))"; $(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) $$tier; \
	  else echo "== $$tier"; $(PYTHON) -m pytest -q $$tier; fi; \
	done; \
	if [ -z "$$typecheck" ]; then $(MAKE) --no-print-directory typecheck; fi
	@# the fuzz smoke (one busy process) runs alongside the benchmarks' smoke runs
	$(MAKE) --no-print-directory -j2 --output-sync=target bench-smoke fuzz-smoke

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
# make fuzz: random datacenters brought up as labs against the isolation oracle (root)
ISOLATION_LABS ?= 6

fuzz: py-deps
	$(BENCH_ENV) $(PYTHON) fuzz/run.py --seconds $(FUZZ_SECONDS)
	$(BENCH_ENV) $(PYTHON) fuzz/isolation.py --seconds $(FUZZ_SECONDS)
	$(BENCH_ENV) $(PYTHON) fuzz/isolation_lab.py --seeds $(ISOLATION_LABS)
	HNV_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest -q tests/fuzz/test_fuzz_targets.py

fuzz-smoke: py-deps
	@set -eo pipefail; echo "== fuzz/run.py --smoke"; \
	$(BENCH_ENV) $(PYTHON) fuzz/run.py --smoke --engine builtin | $(PYTHON) -m json.tool >/dev/null; \
	echo "== fuzz/isolation.py --smoke"; \
	$(BENCH_ENV) $(PYTHON) fuzz/isolation.py --smoke | $(PYTHON) -m json.tool > /dev/null

# Faults under traffic (docs/testing.md "Chaos"): tests/chaos with every fault CHAOS_ROUNDS
# times and a host's controller connection cut for CHAOS_SECONDS (make test: once, 3 s),
# on the data path of HNV_TEST_FASTPATH (unset: auto); the figures of every fault are
# printed as JSON at the end (and kept in CHAOS_JSON). make chaos then runs the long
# schemathesis form (every phase and check, a new seed) against a controller of its own.
CHAOS_SECONDS ?= 30
CHAOS_ROUNDS ?= 3
CHAOS_JSON := build/chaos.json

chaos: chaos-faults schemathesis-long root-long

# What make test's root tier leaves out: the long variants (marker long: the same checks
# on the other wire where the wire is not what a test checks, the demo over both
# encapsulations) on both data paths, and the one_pass tests on the Python switch (off).
root-long: deps
	HNV_TEST_FASTPATH=auto $(PYTHON) -m pytest -q -m $(LONG_MARKER) $(ROOT_TIER)
	HNV_TEST_FASTPATH=off $(PYTHON) -m pytest -q \
	  -m "$(DATAPATH_MARKER) and ($(LONG_MARKER) or $(ONE_PASS_MARKER))" $(ROOT_TIER)

chaos-faults: deps
	@mkdir -p $(dir $(CHAOS_JSON)); rm -f $(CHAOS_JSON); \
	HNV_CHAOS_SECONDS=$(CHAOS_SECONDS) HNV_CHAOS_ROUNDS=$(CHAOS_ROUNDS) \
	  HNV_CHAOS_JSON=$(CHAOS_JSON) $(PYTHON) -m pytest -q tests/chaos; rc=$$?; \
	cat $(CHAOS_JSON) 2>/dev/null; exit $$rc

demo: deps
	$(PYTHON) -m openhnv demo

clean:
	-$(PYTHON) -m openhnv lab clean
	rm -rf $(BPF_BUILD) $(BPF_OBJECT)
	rm -rf .deps-stamp .mypy_cache .pytest_cache .ruff_cache .hypothesis
