"""A flow's life cycle (``vfp.lifecycle``): a connection's flow pair is set up once, closes
at FIN/RST, survives the close's trailing packets, and is retired once (close or idle)."""

from __future__ import annotations

from collections.abc import Sequence

from vfp_frames import MAC_A, MAC_B, PA_A, PA_B, VM1, VM2, TcpEnd, host

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import DEFAULT_CLOSE_TIMEOUT, VfpEngine
from openhnv.vfp.policy import IN, OUT, Block, Direction, Rule, conditions

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
DENY_IN = [(IN, Rule("deny-all-in", 100, conditions(), Block()))]


class Wire:
    """Two hosts: VM1 on A, VM2 on B; frames cross A's encap and B's decap or back."""

    def __init__(self, nic_acl: Sequence[tuple[Direction, Rule]] = ()) -> None:
        self.a, self.b = host(PA_A, MAC_A, nic_acl=nic_acl), host(PA_B, MAC_B)
        self.client = TcpEnd(VM1, VM2, 40000, 5201)
        self.server = TcpEnd(VM2, VM1, 5201, 40000)
        self.now = 0.0

    def c2s(self, flags: int, payload: bytes = b"", **kw: int) -> list[object]:
        return self._carry(self.a, "vm1", self.b, self.client, self.server, flags, payload, kw)

    def s2c(self, flags: int, payload: bytes = b"", **kw: int) -> list[object]:
        return self._carry(self.b, "vm2", self.a, self.server, self.client, flags, payload, kw)

    def _carry(
        self, src: VfpEngine, port: str, dst: VfpEngine, end: TcpEnd, peer: TcpEnd, flags: int,
        payload: bytes, kw: dict[str, int],
    ) -> list[object]:  # fmt: skip
        self.now += 0.001
        frame = end.segment(flags, payload, **kw)
        sent = src.process(port, frame, self.now)
        assert len(sent) == 1, sent
        assert isinstance(sent[0], Transmit), sent
        got = dst.process(UPLINK, sent[0].frame, self.now)
        if got == [Deliver(peer_port(port), frame)]:
            peer.saw(frame)
        return list(got)

    def counters(self, sw: VfpEngine, port: str) -> dict[str, int]:
        row = sw.listing.counters(port)
        # every flow set up is in the table until it is retired
        assert row["flows"] == row.get("flow_setups", 0) - row.get("flows_retired", 0), row
        return {k: row.get(k, 0) for k in ("flows", "flow_setups", "flows_retired", "slow_path")}


def peer_port(port: str) -> str:
    return "vm2" if port == "vm1" else "vm1"


def delivered(emits: list[object]) -> bool:
    return len(emits) == 1 and isinstance(emits[0], Deliver)


def handshake(w: Wire) -> None:
    assert delivered(w.c2s(SYN))
    assert delivered(w.s2c(SYN | ACK))
    assert delivered(w.c2s(ACK))


def test_a_tcp_connection_sets_up_its_pair_once_and_retires_it_once() -> None:
    w = Wire()
    handshake(w)
    for i in range(300):  # data both ways, window updates, an ECN-marked segment
        assert delivered(w.c2s(PSH | ACK, b"d" * 1400, tos=3 if i == 7 else 0))
        if i % 3 == 0:
            assert delivered(w.s2c(ACK, window=500 + i % 11))
        if i % 50 == 0:
            assert delivered(w.s2c(PSH | ACK, b"r" * 37))
    assert delivered(w.c2s(FIN | ACK))
    assert delivered(w.s2c(FIN | ACK))
    assert delivered(w.c2s(ACK))
    for sw, port in ((w.a, "vm1"), (w.b, "vm2")):
        assert w.counters(sw, port) == {
            "flows": 2, "flow_setups": 2, "flows_retired": 0, "slow_path": 2
        }  # fmt: skip
        assert w.counters(sw, UPLINK)["flow_setups"] == 1  # one inner flow arrives per host
        assert [f["closing"] for f in sw.listing.flows(port)] == [True, True]
    # closed pairs go after the close timeout, long before the idle timeout
    later = w.now + DEFAULT_CLOSE_TIMEOUT + 1
    assert w.a.expire(later) == 2
    assert w.b.expire(later) == 2
    for sw, port in ((w.a, "vm1"), (w.b, "vm2")):
        assert w.counters(sw, port)["flows_retired"] == 2
        assert sw.listing.counters(port)["connections"] == 0


def test_the_peers_data_and_fin_after_ours_pass_a_deny_inbound_acl() -> None:
    w = Wire(nic_acl=DENY_IN)  # VM1 accepts only replies of its own connections
    handshake(w)
    assert delivered(w.c2s(PSH | ACK, b"GET / HTTP/1.0\r\n\r\n"))
    assert delivered(w.c2s(FIN | ACK))  # VM1 half-closes first (shutdown(SHUT_WR))
    for _ in range(5):
        assert delivered(w.s2c(PSH | ACK, b"x" * 1000))  # the answer still comes in
    assert delivered(w.s2c(FIN | ACK))  # and the peer's FIN
    assert delivered(w.c2s(ACK))
    assert w.counters(w.a, "vm1")["flow_setups"] == 2
    assert w.counters(w.b, "vm2")["flow_setups"] == 2


def test_an_rst_storm_after_close_stays_on_the_closed_pair() -> None:
    # iperf3's end: the server closes its data socket with data in flight; every
    # segment still arriving is answered by an RST
    w = Wire()
    handshake(w)
    for _ in range(20):
        assert delivered(w.c2s(PSH | ACK, b"d" * 1400))
    assert delivered(w.s2c(RST | ACK))
    for _ in range(400):
        assert delivered(w.c2s(PSH | ACK, b"d" * 1400))
        assert delivered(w.s2c(RST))
    for sw, port in ((w.a, "vm1"), (w.b, "vm2")):
        assert w.counters(sw, port) == {
            "flows": 2, "flow_setups": 2, "flows_retired": 0, "slow_path": 2
        }  # fmt: skip
        assert w.counters(sw, UPLINK)["flow_setups"] == 1
    assert w.a.expire(w.now + DEFAULT_CLOSE_TIMEOUT + 1) == 2
    assert w.counters(w.a, "vm1")["flows_retired"] == 2


def test_a_syn_on_a_closed_pair_starts_a_new_connection() -> None:
    w = Wire(nic_acl=DENY_IN)
    handshake(w)
    assert delivered(w.c2s(RST | ACK))
    # the same ports again from the outside: a new connection, which VM1's ACL denies
    assert w.s2c(SYN) == [Drop("vm1", "acl_deny")]
    assert w.counters(w.a, "vm1")["flows_retired"] == 2  # the closed pair went first
    # from VM1 it is allowed, and lives as a new pair
    assert delivered(w.c2s(SYN))
    assert delivered(w.s2c(SYN | ACK))
    assert delivered(w.c2s(ACK))
    flows = w.a.listing.flows("vm1")
    assert [(f["paired"], f["closing"]) for f in flows] == [(True, False), (True, False)]
    # the pair, the denied SYN's flow (re-decided as the SYN-ACK's) and the new SYN's
    assert w.counters(w.a, "vm1")["flow_setups"] == 4


def test_closing_pairs_go_after_the_close_timeout_open_ones_after_the_idle_timeout() -> None:
    w = Wire()
    w.a = host(PA_A, MAC_A, idle=60.0)
    w.a.close_timeout = 5.0
    handshake(w)
    opened = w.now
    assert w.a.expire(opened + 59) == 0
    assert delivered(w.c2s(FIN | ACK))
    closed = w.now
    assert w.a.expire(closed + 4) == 0
    w.now = closed + 3
    assert delivered(w.s2c(FIN | ACK))  # a hit on either flow keeps both
    assert w.a.expire(closed + 5.5) == 0
    assert w.a.expire(w.now + 4.9) == 0
    assert w.a.expire(w.now + 5.5) == 2
    assert w.counters(w.a, "vm1") == {
        "flows": 0, "flow_setups": 2, "flows_retired": 2, "slow_path": 2
    }  # fmt: skip
    # an open connection stays for the idle timeout
    w.client.sport = w.server.dport = 40001
    handshake(w)
    assert w.a.expire(w.now + 59) == 0
    assert w.a.expire(w.now + 61) == 2 + 2  # the pair, and the uplink's two flows
    assert w.counters(w.a, "vm1")["flows_retired"] == 4


def test_a_policy_change_re_evaluates_a_closing_pair_without_reopening_it() -> None:
    w = Wire()
    handshake(w)
    assert delivered(w.c2s(FIN | ACK))
    w.a.programming.apply(
        c.AddRule("vm1", "ACL_NIC", "out-v4", Rule("count", 5, conditions(), Block()))
    )
    w.a.programming.apply(c.RemoveRule("vm1", "ACL_NIC", "out-v4", "count"))  # generation + 2
    assert delivered(w.s2c(FIN | ACK))
    assert delivered(w.c2s(ACK))
    assert w.counters(w.a, "vm1") == {
        "flows": 2, "flow_setups": 2, "flows_retired": 0, "slow_path": 4
    }  # fmt: skip
    assert [f["closing"] for f in w.a.listing.flows("vm1")] == [True, True]


def test_a_cached_drop_lets_the_replies_of_a_later_connection_on_its_ports_pass() -> None:
    w = Wire(nic_acl=[(OUT, Rule("deny-all-out", 100, conditions(), Block()))])
    stray = w.client.segment(ACK)  # VM1 may not start anything
    assert w.a.process("vm1", stray, 0.0) == [Drop("vm1", "acl_deny")]
    assert w.a.process("vm1", stray, 0.0) == [Drop("vm1", "acl_deny")]  # a cached drop
    assert delivered(w.s2c(SYN))  # VM2 connects to VM1 on the same ports
    assert delivered(w.c2s(SYN | ACK))  # VM1's reply leaves, the cached drop re-decided
    assert delivered(w.s2c(ACK))
    assert delivered(w.c2s(PSH | ACK, b"hello"))
    assert w.counters(w.a, "vm1")["flow_setups"] == 2
