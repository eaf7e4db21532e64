"""Loaded by a ``heron serve`` started for the function tests: registers the test factories in that process."""

from tests.functions._factories import register_test_factories

register_test_factories()
