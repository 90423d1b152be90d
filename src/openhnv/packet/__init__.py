"""Wire formats as pure functions on bytes (DESIGN.md §3, layer 1)."""
