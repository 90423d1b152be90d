"""The host agent: OVSDB rows into VFP programming, ARP answers, port reports."""
