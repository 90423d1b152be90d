"""openhnv: an open implementation of Hyper-V Network Virtualization v2."""

__version__ = "0.1.0"
