"""The README's curl walk-through works as written: figure 8 through real processes.

The PUT lines are taken from README.md itself and run with curl against a real
``hnv controller`` and two real ``hnv host --driver none`` processes, so the README cannot
drift from what the product accepts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.lab import daemons
from openhnv.lab.access import ApiAccess
from openhnv.testing.polling import eventually
from openhnv.testing.processes import ControllerProcess, start_hosts

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## The Network Controller with curl"
README_DIR = "/tmp/hnv-fig8"
ENV = daemons.python_env()
HNV = daemons.hnv_argv()

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def _section() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def put_lines() -> list[str]:
    return [
        line
        for block in _blocks(_section())
        for line in block.splitlines()
        if line.startswith("curl ") and " -X PUT " in line and "/bad " not in line
    ]


@pytest.fixture
def datacenter() -> Iterator[tuple[ControllerProcess, Path]]:
    """A controller and host1/host2 as the README starts them, in a private directory:
    the controller serves HTTPS and wants a credential (the README's token)."""
    base = Path(tempfile.mkdtemp(prefix="hnv-rd"))
    try:
        hosts = start_hosts(base, ("host1", "host2"))
        try:
            access = ApiAccess.create(base / "pki")
            with ControllerProcess(base / "nc.db", access=access) as nc:
                yield nc, base
        finally:
            for host in hosts:
                host.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _env(nc: ControllerProcess, base: Path) -> dict[str, str]:
    assert nc.access is not None
    return dict(ENV, NC=nc.base, PKI=str(base / "pki"), TOKEN=nc.access.admin_token)


def test_the_readme_starts_a_secure_controller() -> None:
    setup = _blocks(_section())[0]
    assert "hnv pki init --dir $PKI" in setup
    assert "TOKEN=$(hnv pki token --dir $PKI --name me --role admin)" in setup
    start = next(line for line in setup.splitlines() if line.startswith("hnv controller"))
    for flag in ("--tls-cert $PKI/localhost-cert.pem", "--tokens $PKI/api-tokens.json"):
        assert flag in start
    assert "NC=https://" in setup
    assert all("--cacert $PKI/apica-cert.pem --oauth2-bearer $TOKEN" in x for x in put_lines())


def test_the_readme_shows_every_figure8_body() -> None:
    lines = put_lines()
    files = sorted((ROOT / "examples" / "figure8").glob("[0-9][0-9]-*.json"))
    assert len(lines) == len(files) == 11
    for line, file in zip(lines, files, strict=True):
        body = json.loads(line.split(" -d '", 1)[1].rstrip("'"))
        assert body == json.loads(file.read_text()), file.name


def test_the_readme_walkthrough_builds_figure8(
    datacenter: tuple[ControllerProcess, Path],
) -> None:
    process, base = datacenter
    nc, env = process.base, _env(*datacenter)
    http = process.http()
    script = "\n".join(line.replace(README_DIR, str(base)) for line in put_lines())
    done = subprocess.run(
        ["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(text) for text in done.stdout.replace("}{", "}\n{").splitlines()]
    assert all("error" not in answer for answer in answers), answers

    def succeeded() -> bool:
        nics = http.get(f"{nc}/networkInterfaces").json()["value"]
        return len(nics) == 4 and all(
            nic["properties"]["provisioningState"] == "Succeeded" for nic in nics
        )

    eventually(succeeded, "every NIC to be Succeeded")

    def host1_success() -> bool:
        server = http.get(f"{nc}/servers/host1").json()["properties"]
        return bool(server.get("configurationState", {}).get("status") == "Success")

    eventually(host1_success, "host1's configurationState Success")
    mapping = subprocess.run(
        [*HNV, "host", "pa-ca-mapping", "--json", "--state-dir", str(base / "host1")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = json.loads(mapping.stdout)
    seen = {(str(r["virtual_subnet_id"]), r["ca_ip_address"], r["pa_ip_address"]) for r in rows}
    assert seen == {
        ("5001", "10.1.1.11", "192.168.1.10"),
        ("5001", "10.1.1.12", "192.168.2.20"),
        ("6001", "10.1.1.11", "192.168.1.10"),
        ("6001", "10.1.1.12", "192.168.2.20"),
    }

    bad = next(
        line
        for block in _blocks(_section())
        for line in block.splitlines()
        if line.startswith("curl ") and "/bad " in line
    )
    shown = next(line for line in _section().splitlines() if line.startswith('# {"error"'))
    refused = subprocess.run(
        ["bash", "-euc", bad], env=env, capture_output=True, text=True, timeout=30
    )
    assert json.loads(refused.stdout) == json.loads(shown[2:])
    assert http.get(f"{nc}/networkInterfaces/bad").status_code == 404
    http.close()
