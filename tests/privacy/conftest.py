"""The ingest tests' extract fixtures, shared with the privacy tests."""

from tests.ingest.conftest import clean_extract, extract  # noqa: F401
