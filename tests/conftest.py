"""Shared test settings.

Tests are never timed (speed lives in bench/), so hypothesis gets no per-example
deadline: on a shared 2-core machine a slow example is load, not a failure.
"""

from hypothesis import settings

settings.register_profile("openhnv", deadline=None)
settings.load_profile("openhnv")
