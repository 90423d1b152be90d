"""Operator commands that inspect a running host: ``hnv vfp``, ``hnv trace`` and the
queries of ``hnv host``; they talk to the host over its control socket and render tables."""
