"""The Virtual Filtering Platform engine: layers, rules, spaces, unified flow table; no I/O."""
