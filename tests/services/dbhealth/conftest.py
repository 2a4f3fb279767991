"""One planted database per test module (tests/dbhealth_workload.py), and one without
pg_stat_statements."""

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import PlatformDb
from tests.dbhealth_workload import db_without_extension, in_use, planted_db


@pytest.fixture(scope="module")
def health_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    return planted_db(make_platform_db, "dbhealth")


@pytest.fixture
def hdb(health_db: PlatformDb) -> Iterator[PlatformDb]:
    with in_use(health_db) as db:
        yield db


@pytest.fixture(scope="module")
def bare_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    return db_without_extension(make_platform_db, "dbh_noext")
