"""The Virtual Filtering Platform engine: layers, rules, spaces, unified flow table; no I/O.

Program a ``VSwitch`` with the commands of ``openhnv.vfp.commands`` through ``apply``;
hand it frames with ``process_batch``; act on the returned emits (``Deliver``,
``Transmit``, ``Punt``, ``Drop``). docs/vfp.md describes the model.
"""
