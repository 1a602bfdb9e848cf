"""`invoke monitor` on a stack deployed with `phase0_log: server` (issue 17, item 13) shows the
deployed phase, not "unknown body (edited by hand?)"."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_monitor_knows_the_server_log_body(e2e_stack):
    stack = e2e_stack(phase0_log="server")
    stack.invoke("up")
    shown = stack.invoke("monitor").stdout
    assert "0 (phase0_log: server)" in shown and "unknown body" not in shown, shown
