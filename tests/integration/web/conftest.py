"""The API tests' database fixtures, for the demo page's route tests."""

from tests.integration.api.conftest import sql  # noqa: F401 - fixture
