"""hnv pki: a controller CA and a host CA, and the certificates they sign."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

import openhnv
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import ca_cert_path, init_ca, issue, ssl_files


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_each_role_is_signed_by_its_own_ca(tmp_path: Path) -> None:
    cas = init_ca(tmp_path)
    host = issue(tmp_path, "host1", "host")
    controller = issue(tmp_path, "nc1", "controller")
    host_cert = _cert(host.certificate)
    host_cert.verify_directly_issued_by(_cert(cas["host"]))
    _cert(controller.certificate).verify_directly_issued_by(_cert(cas["controller"]))
    assert host_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host1"
    ou = host_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert ou == "host"
    assert (host.private_key.stat().st_mode & 0o777) == 0o600
    assert _cert(cas["host"]).extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_each_side_trusts_only_the_other_role(tmp_path: Path) -> None:
    init_ca(tmp_path)
    assert issue(tmp_path, "host1", "host").ca_cert == ca_cert_path(tmp_path, "controller")
    assert issue(tmp_path, "nc1", "controller").ca_cert == ca_cert_path(tmp_path, "host")
    assert ssl_files(tmp_path, "host1", "host").certificate == tmp_path / "host1-cert.pem"


def test_a_host_certificate_does_not_verify_as_a_controller(tmp_path: Path) -> None:
    cas = init_ca(tmp_path)
    host = issue(tmp_path, "host2", "host")
    with pytest.raises((ValueError, InvalidSignature)):
        _cert(host.certificate).verify_directly_issued_by(_cert(cas["controller"]))


def test_a_certificate_of_another_pki_does_not_verify(tmp_path: Path) -> None:
    init_ca(tmp_path / "a")
    other = init_ca(tmp_path / "b")
    files = issue(tmp_path / "a", "nc1", "controller")
    with pytest.raises(InvalidSignature):
        _cert(files.certificate).verify_directly_issued_by(_cert(other["controller"]))


def test_existing_cas_are_kept_unless_forced(tmp_path: Path) -> None:
    first = init_ca(tmp_path)["host"].read_bytes()
    with pytest.raises(OvsdbError, match="CAs already exist"):
        init_ca(tmp_path)
    assert init_ca(tmp_path, force=True)["host"].read_bytes() != first


@pytest.mark.parametrize(
    ("name", "role", "reason"),
    [
        ("host 1", "host", "bad certificate name 'host 1'"),
        ("host1", "admin", "bad role 'admin'"),
    ],
)
def test_bad_names_and_roles_are_refused(tmp_path: Path, name: str, role: str, reason: str) -> None:
    init_ca(tmp_path)
    with pytest.raises(OvsdbError, match=reason):
        issue(tmp_path, name, role)


def test_hnv_pki_is_a_registered_subcommand(tmp_path: Path) -> None:
    src = Path(openhnv.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(src))
    run = [sys.executable, "-m", "openhnv", "pki"]
    subprocess.run([*run, "init", "--dir", str(tmp_path)], check=True, env=env, capture_output=True)
    done = subprocess.run(
        [*run, "issue", "--dir", str(tmp_path), "--name", "host1", "--role", "host"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "host host1" in done.stdout
    assert (tmp_path / "host1-cert.pem").exists()
    helped = subprocess.run(
        [sys.executable, "-m", "openhnv", "--help"], env=env, capture_output=True, text=True
    )
    assert "pki" in helped.stdout
