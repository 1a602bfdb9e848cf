"""The promotion gate: a stack enters Phase 1 only after the stack before it proved Phase 1.

Stacks are ordered by `promotes_from` in their stack files (local -> dev -> staging ->
prod). In the deployment guide's words: the stack before runs Phase 1, its smoke test
passes, and "drift detection shows < 0.1% drift" (each stack's own threshold).
"""

from __future__ import annotations

from dualwrite import connection, config as stack_config
from dualwrite.smoke import Check, run_smoke_test


def phase_gate(stack: str) -> list[Check]:
    # Only the order is read from the target stack: its own secrets need not be at hand.
    previous = stack_config.read_stack_file(stack).get("promotes_from")
    if previous is None:
        return [Check("gate", f"'{stack}' is first in the promotion order", True, "nothing to wait for")]
    try:
        before = stack_config.load(previous)
    except stack_config.ConfigError as error:
        return [Check("gate", f"previous stack '{previous}' has valid config", False, str(error))]
    checks = [Check("gate", f"'{previous}' declares phase 1", before.phase == 1, f"phase={before.phase}")]
    if before.phase != 1:
        return checks
    _, conn = connection.connect(previous, autocommit=True)
    with conn:
        smoke = run_smoke_test(conn, before)
    failed = [c for c in smoke if not c.ok]
    checks.append(
        Check("gate", f"'{previous}' smoke test passes", not failed,
              f"{len(smoke) - len(failed)}/{len(smoke)} checks" + (f"; first failure: {failed[0].name}" if failed else ""))
    )
    # The drift check is part of the smoke test in phase 1; name it on its own for the reader.
    drift = next((c for c in smoke if c.name.startswith("drift at most")), None)
    if drift is not None:
        checks.append(Check("gate", f"'{previous}' {drift.name}", drift.ok, drift.detail))
    return checks
