"""PostgreSQL refuses to run as root, so as root it runs as `postgres`, which must
reach its data folder. A checkout under a private folder (mktemp -d makes 0700)
gets its cluster under /var/tmp/hostchecker-postgres instead."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from scripts.localcloud.postgres import EXTERNAL_PG_ROOT, Postgres, _postgres_user, reachable_by

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user PostgreSQL runs as that user")


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="hc-pg-home-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_state_folder_postgres_can_reach_keeps_its_cluster_inside(folder):
    os.chmod(folder, 0o755)
    pg = Postgres(folder / "state", 1)
    assert pg.home is None
    assert pg.data_dir == folder / "state" / "postgres"
    assert reachable_by(_postgres_user(), pg.log_path.parent)


def test_a_private_state_folder_gets_its_cluster_outside_owned_by_postgres(folder):
    os.chmod(folder, 0o700)
    pg = Postgres(folder / "state", 1)
    assert not reachable_by(_postgres_user(), folder / "state")
    assert pg.home is not None and pg.home.parent == EXTERNAL_PG_ROOT
    assert pg.data_dir.is_relative_to(pg.home) and pg.log_path.is_relative_to(pg.home)
    assert Postgres(folder / "state", 1).home == pg.home  # the same folder every time
