"""Shared test settings: the openhnv pytest plugin, and hypothesis without deadlines.

The plugin (``openhnv.testing.plugin``) brings the ``root`` marker and the fixtures
every tier shares. Tests are never timed (speed lives in bench/), so hypothesis gets
no per-example deadline: on a shared 2-core machine a slow example is load, not a
failure.
"""

from hypothesis import settings

pytest_plugins = ["openhnv.testing.plugin"]

settings.register_profile("openhnv", deadline=None)
settings.load_profile("openhnv")
