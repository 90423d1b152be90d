"""The Virtual Filtering Platform engine: layers, rules, spaces, unified flow table; no I/O.

Program a ``VfpEngine`` (``openhnv.vfp.engine``) with the commands of
``openhnv.vfp.commands`` through ``engine.programming.apply``; hand it frames with
``engine.process_batch``; act on the returned emits (``Deliver``, ``Transmit``, ``Punt``,
``Drop``); read it through ``engine.listing``. docs/vfp.md describes the model.
"""
