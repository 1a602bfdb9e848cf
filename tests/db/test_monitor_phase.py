"""`invoke monitor`'s "deployed phase": read from the body sync_old_to_new() runs, for every body
the project deploys (Phase 0 in both `phase0_log` modes, Phase 1), and a hand-edited one."""

from __future__ import annotations

import pytest

from dualwrite import migration
from dualwrite.monitor import deployed_phase

pytestmark = pytest.mark.db


@pytest.mark.parametrize("phase, phase0_log, shown", [
    (0, "notice", "0"),
    (0, "server", "0 (phase0_log: server)"),
    (1, "notice", "1"),
])
def test_every_deployed_body_is_recognised(conn, phase, phase0_log, shown):
    migration.apply(conn, phase, phase0_log=phase0_log)
    assert deployed_phase(conn) == shown


def test_a_body_edited_by_hand_is_reported(conn):
    migration.apply(conn, 0)
    conn.execute("CREATE OR REPLACE FUNCTION public.sync_old_to_new() RETURNS trigger LANGUAGE plpgsql "
                 "SET search_path = '' AS $$ BEGIN RETURN NULL; END $$")
    assert deployed_phase(conn) == "unknown body (edited by hand?)"


def test_absent_before_013(conn):
    assert deployed_phase(conn) == "absent"
