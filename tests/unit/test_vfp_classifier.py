"""The indexed classifier picks exactly the rule a linear scan of every rule picks."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from openhnv.vfp.classifier import PacketView, RuleIndex, linear_classify, matches
from openhnv.vfp.policy import Allow, Block, Conditions, Rule, conditions

MACS = ["00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"]
PREFIXES = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.1.0/24",
    "10.1.1.7/32",
    "192.168.0.0/16",
    "0.0.0.0/0",
]
ADDRESSES = ["10.1.1.7", "10.1.1.8", "10.1.2.1", "10.2.0.1", "192.168.3.4", "8.8.8.8"]


def _opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), strategy)


port_ranges = st.lists(
    st.one_of(
        st.sampled_from([22, 53, 80, 443]), st.sampled_from([(1, 1023), (1024, 65535), (50, 90)])
    ),
    min_size=1,
    max_size=2,
)
condition_sets = st.builds(
    conditions,
    src_macs=_opt(st.lists(st.sampled_from(MACS), min_size=1, max_size=2)),
    dst_macs=_opt(st.lists(st.sampled_from(MACS), min_size=1, max_size=2)),
    src_prefixes=_opt(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2)),
    dst_prefixes=_opt(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2)),
    dst_excluded=st.lists(st.sampled_from(PREFIXES[:3]), max_size=1),
    protocols=_opt(st.lists(st.sampled_from([1, 6, 17]), min_size=1, max_size=2)),
    src_ports=_opt(port_ranges),
    dst_ports=_opt(port_ranges),
    vsids=_opt(st.lists(st.sampled_from([5001, 5002]), min_size=1, max_size=2)),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    n = draw(st.integers(0, 30))
    conds = draw(st.lists(condition_sets, min_size=n, max_size=n))
    prios = draw(st.lists(st.integers(1, 20), min_size=n, max_size=n))
    return [
        Rule(f"r{i}", p, cond, Allow() if i % 2 else Block())
        for i, (cond, p) in enumerate(zip(conds, prios, strict=True))
    ]


packets = st.builds(
    lambda sm, dm, s, d, proto, sp, dp, vsid: PacketView(
        sm,
        dm,
        0x0800,
        vsid,
        4,
        int(ipaddress.IPv4Address(s)),
        int(ipaddress.IPv4Address(d)),
        proto,
        sp,
        dp,
    ),
    st.sampled_from(MACS),
    st.sampled_from(MACS),
    st.sampled_from(ADDRESSES),
    st.sampled_from(ADDRESSES),
    st.sampled_from([1, 6, 17]),
    st.sampled_from([22, 53, 80, 443, 1000, 5000]),
    st.sampled_from([22, 53, 80, 443, 1000, 5000]),
    st.sampled_from([5001, 5002]),
)


@settings(max_examples=120, deadline=None)
@given(rule_sets(), st.lists(packets, min_size=1, max_size=10))
def test_index_agrees_with_a_linear_scan(rules: list[Rule], views: list[PacketView]) -> None:
    index = RuleIndex(rules)
    for view in views:
        assert index.classify(view) == linear_classify(rules, view)


def test_prefix_exclusion_models_the_internet_tag() -> None:
    internet = conditions(dst_prefixes=["0.0.0.0/0"], dst_excluded=["10.0.0.0/8"])
    inside = PacketView("a", "b", 0x0800, 5001, 4, 1, int(ipaddress.IPv4Address("10.3.3.3")))
    outside = PacketView("a", "b", 0x0800, 5001, 4, 1, int(ipaddress.IPv4Address("8.8.8.8")))
    assert not matches(internet, inside)
    assert matches(internet, outside)


def test_a_port_condition_never_matches_a_packet_without_ports() -> None:
    icmp = PacketView("a", "b", 0x0800, 5001, 4, 1, 2, 1, None, None)
    assert not matches(conditions(dst_ports=[(0, 65535)]), icmp)
    assert matches(Conditions(), icmp)


def test_large_rule_sets_classify_to_the_right_rule() -> None:
    rules = [
        Rule(
            f"deny-{i}",
            100 + i,
            conditions(
                protocols=[6],
                dst_prefixes=[f"10.{i // 256}.{i % 256}.0/24"],
                dst_ports=[i % 1000 + 1],
            ),
            Block(),
        )
        for i in range(2000)
    ]
    rules.append(Rule("allow-all", 65000, conditions(), Allow()))
    index = RuleIndex(rules)
    hit = PacketView(
        "a",
        "b",
        0x0800,
        5001,
        4,
        1,
        int(ipaddress.IPv4Address("10.7.9.1")),
        6,
        1,
        (7 * 256 + 9) % 1000 + 1,
    )
    miss = PacketView(
        "a", "b", 0x0800, 5001, 4, 1, int(ipaddress.IPv4Address("10.7.9.1")), 6, 1, 9999
    )
    assert index.classify(hit) == rules[7 * 256 + 9]
    assert index.classify(miss) == rules[-1]


PREFIXES6 = ["fd00::/8", "fd00:1::/32", "fd00:1:1::/48", "fd00:1:1::7/128", "::/0"]
ADDRESSES6 = ["fd00:1:1::7", "fd00:1:1::8", "fd00:1:2::1", "fd01::1", "2001:db8::1"]
rules6 = st.lists(
    st.builds(
        conditions,
        src_prefixes=_opt(
            st.lists(st.sampled_from(PREFIXES6 + PREFIXES[:2]), min_size=1, max_size=2)
        ),
        dst_prefixes=_opt(st.lists(st.sampled_from(PREFIXES6), min_size=1, max_size=2)),
        dst_excluded=st.lists(st.sampled_from(PREFIXES6[1:3]), max_size=1),
        protocols=_opt(st.lists(st.sampled_from([6, 17]), min_size=1, max_size=2)),
    ),
    max_size=20,
)


@settings(max_examples=80, deadline=None)
@given(rules6, st.sampled_from(ADDRESSES6), st.sampled_from(ADDRESSES6), st.sampled_from([6, 17]))
def test_index_agrees_with_a_linear_scan_for_ipv6(
    conds: list[Conditions], src: str, dst: str, proto: int
) -> None:
    rules = [Rule(f"r{i}", i % 5, cond, Allow()) for i, cond in enumerate(conds)]
    view = PacketView(
        "a",
        "b",
        0x86DD,
        5001,
        6,
        int(ipaddress.IPv6Address(src)),
        int(ipaddress.IPv6Address(dst)),
        proto,
        1,
        2,
    )
    assert RuleIndex(rules).classify(view) == linear_classify(rules, view)
