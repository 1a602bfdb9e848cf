"""The promotion gate: a stack enters Phase 1 only after the stack before it proved Phase 1.

Stacks are ordered by `promotes_from` in their stack files (local -> dev -> staging ->
prod). The gate is the deployment guide's whole Phase 1 Activation Checklist
(dualwrite/gate.py, one row per item, each saying what it read), after two rows of its own:
the stack before declares Phase 1 and passes its smoke test. The first stack of the order
(the embedded `local`) has no stack before it: nothing to wait for.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import psycopg

from dualwrite import connection, gate, config as stack_config
from dualwrite.smoke import Check, run_smoke_test


def _reach(stack: str, work: Callable[[Any], list[Check]], fail: Callable[[str], list[Check]]) -> list[Check]:
    """Run `work(conn)` on a stack's database; a stack that cannot be reached fails its rows."""
    try:
        _, conn = connection.connect(stack, autocommit=True)
    except Exception as error:  # noqa: BLE001 - unreachable, bad secret, missing engine: say which
        return fail(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
    with conn:
        return work(conn)


def _read(name: str, row: Callable[[], Check]) -> Check:
    """A row read from the previous stack's database; one it cannot read (013 not deployed there) fails."""
    try:
        return row()
    except psycopg.Error as error:
        return Check(gate.STEP, name, False, f"could not read it: {type(error).__name__}: "
                                             f"{(str(error).strip().splitlines() or [''])[0]}")


def phase_gate(stack: str, *, now: datetime | None = None,
               history: Callable[[str], list[dict[str, Any]]] = gate.read_history) -> list[Check]:
    """Every row of the gate for `stack` entering Phase 1 (ConfigError on a bad stack file)."""
    # The target's own password need not be at hand to plan its gate (the Edge Function row
    # connects with it, and says so when it cannot).
    raw = stack_config.read_stack_file(stack)
    raw.pop("db_password", None)
    config = stack_config.parse(stack, raw, has_password=True)
    previous = config.promotes_from
    if previous is None:
        return [Check("gate", f"'{stack}' is first in the promotion order", True,
                      "nothing to wait for (the checklist reads the stack before)")]
    try:
        before = stack_config.load(previous)
    except stack_config.ConfigError as error:
        return [Check("gate", f"previous stack '{previous}' has valid config", False, str(error))]
    checks = [Check("gate", f"'{previous}' declares phase 1", before.phase == 1 and before.trigger_enabled,
                    f"{before.stack_file}: phase={before.phase}, dual_write={before.dual_write}")]

    checks += _reach(stack, lambda conn: [gate.edge_function(conn, config)],
                     lambda why: [gate.edge_function(None, config, why)])
    # Every row, even when the first fails: a reviewer sees all that is missing at once.
    try:
        soak = gate.soak(previous, history(previous), config, now or datetime.now(timezone.utc))
    except Exception as error:  # noqa: BLE001
        soak = gate.soak(previous, None, config, now or datetime.now(timezone.utc), type(error).__name__ + ": "
                         + (str(error).strip().splitlines() or [""])[-1][:300])

    def on_previous(conn: Any) -> list[Check]:
        smoke = run_smoke_test(conn, before)
        failed = [c for c in smoke if not c.ok]
        return [
            Check("gate", f"'{previous}' smoke test passes", not failed,
                  f"{len(smoke) - len(failed)}/{len(smoke)} checks"
                  + (f"; first failure: {failed[0].name}" if failed else "")),
            soak,
            _read(drift_row, lambda: gate.drift(conn, before)),
            _read(gate.PERFORMANCE_ROW, lambda: gate.performance(conn, before, config)),
            _read(gate.ERRORS_ROW, lambda: gate.errors(conn, before, config)),
        ]

    drift_row = gate.DRIFT_ROW.format(threshold=before.drift_threshold)
    checks += _reach(previous, on_previous, lambda why: [
        Check("gate", f"'{previous}' smoke test passes", False, f"could not reach '{previous}': {why}"), soak,
        *(Check(gate.STEP, name, False, f"could not reach '{previous}': {why}")
          for name in (drift_row, gate.PERFORMANCE_ROW, gate.ERRORS_ROW))])
    checks.append(gate.approval(config))
    return checks
