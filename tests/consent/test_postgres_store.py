"""PostgreSQL-specific behaviour: the database itself refuses edits of the log."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from consent import SQLAlchemyConsentStore
from tests.consent.builders import add_grant

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_events SET purpose = 'marketing'",
        "DELETE FROM consent_events",
        "TRUNCATE consent_events",
    ],
)
def test_database_refuses_edits_of_the_log(postgres_url: str, statement: str) -> None:
    with SQLAlchemyConsentStore(postgres_url) as store:
        add_grant(store, "S1")
    engine = create_engine(postgres_url)

    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    with SQLAlchemyConsentStore(postgres_url) as store:
        assert [e.kind for e in store.events()] == ["granted"]
