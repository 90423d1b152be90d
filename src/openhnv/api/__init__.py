"""The northbound REST API (Microsoft Network Controller conventions)."""
