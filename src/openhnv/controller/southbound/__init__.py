"""Southbound: the publisher and its per-host OVSDB links, server remotes and
``configurationState``, NIC provisioning bookkeeping."""
