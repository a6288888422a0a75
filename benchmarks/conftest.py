from tests.conftest import pytest_collection_modifyitems  # noqa: F401  (skip shared_data benchmarks without ../shared)
