"""Fixtures of the end-to-end review cases: the app with every provider's door open."""

from tests.integration.doors import app, make_app  # noqa: F401  (fixtures)
