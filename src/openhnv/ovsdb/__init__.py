"""Southbound OVSDB: ms_vtep and ms_firewall schemas, ovsdb-server supervisor, IDL helpers."""
