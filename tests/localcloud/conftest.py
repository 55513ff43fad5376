"""The emulator's tests drive the real app here and there (the scheduler runs its sweep): the
product's API and database fixtures, shared with tests/integration."""

from tests.integration.conftest import api, app_client, db  # noqa: F401 - fixtures
