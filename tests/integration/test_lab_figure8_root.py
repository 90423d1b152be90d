"""Figure 8 end to end over VXLAN and NVGRE: TCP within a tenant, never across tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_running import EXAMPLES, running_lab, topology_of, unique_name

from openhnv.lab import capture, traffic
from openhnv.lab.demo import main as demo_main
from openhnv.lab.orchestrator import leftovers
from openhnv.testing.datapath_mode import fastpath_mode

pytestmark = pytest.mark.root


@pytest.mark.datapath
@pytest.mark.parametrize("encapsulation", ["vxlan", "nvgre"])
def test_each_web_reaches_only_its_own_sql(encapsulation: str) -> None:
    topology = topology_of(EXAMPLES / "figure8.yaml", encapsulation=encapsulation)
    with running_lab(topology) as lab:
        ns = lab.vm_namespace
        with (
            capture.PaCapture(topology) as pa,
            traffic.TcpResponder(ns("contoso-sql"), "10.1.1.11", 1433, b"contoso\n"),
            traffic.TcpResponder(ns("fabrikam-sql"), "10.1.1.11", 1433, b"fabrikam\n") as fab,
        ):
            assert traffic.tcp_answer(ns("contoso-web"), "10.1.1.11", 1433, b"q") == b"contoso\n"
            assert traffic.tcp_answer(ns("fabrikam-web"), "10.1.1.11", 1433, b"q") == (
                b"fabrikam\n"
            )
            seen = len(fab.peers)
            # Contoso Web aims at Fabrikam SQL's MAC: VSID 5001 has no such MAC.
            traffic.set_neighbor(ns("contoso-web"), "10.1.1.11", lab.nic_mac("fabrikam-sql"))
            with pytest.raises(TimeoutError):  # dropped, never refused
                traffic.tcp_request(ns("contoso-web"), "10.1.1.11", 1433, b"q", timeout=2.0)
            assert len(fab.peers) == seen
            records = capture.tunnels(pa.snapshot())
        vsids = {r.vsid for r in records if r.inner_dport == 1433}
        assert vsids == {5001, 6001}
        assert {r.encapsulation for r in records} == {encapsulation}
        from_host2 = [r for r in records if r.host == "host2"]
        assert from_host2
        assert all(r.vlan == 20 for r in from_host2)
        assert all(r.outer_src.startswith("192.168.2.") for r in from_host2)


# test_each_web_reaches_only_its_own_sql makes the demo's checks on both wires and both
# data paths; make test runs the demo over one wire in the auto pass (the command passes
# and leaves nothing), its default run over both is a long variant.
@pytest.mark.datapath
@pytest.mark.one_pass
@pytest.mark.parametrize(
    "encapsulations",
    [("nvgre",), pytest.param((), marks=pytest.mark.long, id="both")],
    ids=lambda e: "-".join(e),
)
def test_demo_passes_and_leaves_nothing(
    encapsulations: tuple[str, ...], capfd: pytest.CaptureFixture[str]
) -> None:
    name = unique_name()
    chosen = [a for e in encapsulations for a in ("--encapsulation", e)]
    assert demo_main(["--lab", name, *chosen, "--fastpath", fastpath_mode()]) == 0
    out = capfd.readouterr().out
    assert "FAIL" not in out
    assert "checks passed" in out
    for encapsulation in encapsulations or ("vxlan", "nvgre"):
        assert f"=== figure 8 over {encapsulation.upper()}" in out
    assert leftovers(name) == []


@pytest.mark.datapath
@pytest.mark.one_pass  # the demo's report (the ACL's drop is checked on both data paths)
def test_demo_fails_when_a_tenant_is_cut_off(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An ACL denying Contoso's SQL port: the demo says FAIL, exits 1, leaves nothing."""
    name = unique_name()
    text = (EXAMPLES / "figure8.yaml").read_text()
    text = text.replace(
        "virtual_networks:\n",
        "acls:\n"
        "  - name: no-sql\n"
        "    rules:\n"
        "      - {name: deny-sql, protocol: TCP, destination_ports: '1433', action: Deny,\n"
        "         priority: 100, type: Inbound}\n"
        "virtual_networks:\n",
    )
    text = text.replace("        vsid: 5001\n", "        vsid: 5001\n        acl: no-sql\n")
    path = tmp_path / "figure8-cut.yaml"
    path.write_text(text)
    argv = ["--lab", name, "--topology", str(path), "--encapsulation", "vxlan"]
    assert demo_main([*argv, "--fastpath", fastpath_mode()]) == 1
    out = capfd.readouterr().out
    assert "FAIL  [vxlan] contoso: Web reaches its own SQL on TCP 1433" in out
    assert "PASS  [vxlan] fabrikam: Web reaches its own SQL on TCP 1433" in out
    assert leftovers(name) == []
