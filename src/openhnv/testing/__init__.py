"""Test support shared by the tests, the benchmarks and whoever drives a lab by hand.

Why a shipped package and not a ``tests/`` helper: the benchmarks (``bench/``) need the
same northbound snapshots, daemon processes and namespaces as the tests, and they run
against an installed openhnv without the ``tests/`` tree on ``sys.path``; the
documents themselves come from the lab's builder (``openhnv.lab.documents``), which
``hnv lab`` uses too. It is the top layer: it may import every other package, and no
product module imports it (``tests/unit/test_imports.py``).

- ``polling`` — ``eventually``: the one wait for what another thread or process does.
- ``privileges`` — whether this process may make network namespaces.
- ``namespaces`` — short unique ``hnv-`` namespace names, pairs joined by a veth, a
  host namespace with VM namespaces, all removed again (tolerating "already gone").
- ``processes`` — ``hnv controller`` and ``hnv host`` as child processes, stopped by PID.
- ``cluster`` — ``hnv controller --store etcd://...`` replicas as processes, the one
  that publishes, and a store on a shared etcd under a root of a test's own.
- ``ovsdb`` — an ``ovsdb-server`` standing in for a host's database (the publisher's peer).
- ``snapshots`` — northbound documents as a GET returns them (the compiler's input),
  the seed's figure 8 and synthetic datacenters of any size; ``southbound`` — the rows
  the controller writes for them; ``datacenter`` — the publisher's small datacenter,
  PUT through any controller.
- ``dataplane``, ``ovs_netdev``, ``fastpath_net`` — data-path worlds for the root tier
  and the benchmarks: a lab fabric whose hosts run HostSwitch on the Linux driver (and
  Open vSwitch netdev as a peer), two hosts under the kernel fast path.
- ``plugin`` — the pytest plugin (``tests/conftest.py`` loads it by name; it is not an
  entry point, so installing openhnv changes no other project's test runs): the
  ``root`` marker skips without root, and fixtures over the modules above.

Only ``plugin`` imports pytest; the rest runs in a benchmark as well as in a test.
"""
