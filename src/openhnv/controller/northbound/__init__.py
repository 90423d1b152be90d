"""Northbound: resource models and validation, the store, allocators and the service
that serves PUT/GET/DELETE; what the REST API calls."""
