"""Fixtures of the functional tests beyond the openhnv plugin's: etcd clusters."""

from __future__ import annotations

from etcd_fixtures import etcd_one, etcd_three

__all__ = ["etcd_one", "etcd_three"]
