import pytest

from tests.research.helpers import publish_e2e


@pytest.fixture(scope="session")
def published(e2e, tmp_path_factory):
    """The e2e extract published once as a snapshot: (root, PublishedSnapshot)."""
    root = tmp_path_factory.mktemp("snapshots")
    return root, publish_e2e(e2e, root)
