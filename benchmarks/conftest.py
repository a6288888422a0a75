from tests.conftest import DATASETS, pytest_collection_modifyitems  # noqa: F401  (shared_data skipping)
