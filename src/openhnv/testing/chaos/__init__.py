"""The chaos suite (docs/testing.md): faults injected into a lab under traffic and writes.

- ``relay`` — a unix-socket relay between the controller and a host, which can be cut;
- ``traffic`` — a probe stream of our own (the traffic gap) and iperf3 (the load);
- ``writes`` — a stream of northbound writes and the check that none acknowledged is lost;
- ``converge`` — the controller's states and each host's OVSDB against the compiler;
- ``faults`` — kill -9 and restart of each daemon, a cut, a host namespace rebooted;
- ``suite`` — ``chaos_lab``: all of it around one lab, one ``FaultResult`` per fault.
"""
