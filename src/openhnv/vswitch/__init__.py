"""The virtual switch around the VFP engine and its I/O drivers."""
