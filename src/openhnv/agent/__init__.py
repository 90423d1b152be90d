"""The host agent: reads its OVSDB, turns rows into VFP programming, answers ARP and
reports local ports back (no process or socket of its own: the host process runs it)."""
