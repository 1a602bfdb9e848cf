"""Migration 013: dual-write triggers, as a Pulumi program.

Reads like the deployment guide (../shared/seed/deployment-guide-013.md): what the
migration creates, its security notes, the Phase 1 checklist, and the rollback plan.
The phase and the rollback state are stack config; see Pulumi.<stack>.yaml. What each
phase (0, 1, 2, 3, retired) has, syncs and checks is dualwrite/phases.py.
"""

import sys
from pathlib import Path

# The engine runs this folder as a script; make the project's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi  # noqa: E402

from infra.components import Migration013, Owner, PhaseJobs, Removed, Security  # noqa: E402
from infra.stack import stack_config  # noqa: E402

# Config is parsed once; a bad value stops the preview here, before any connection.
config = stack_config()

# Which project and stack own migration 013 in this database: a second stack pointing at the
# same database is refused at preview; `invoke take-ownership` moves it on purpose.
owner = Owner(pulumi.get_project(), pulumi.get_stack()).record

if config.migration_present:
    # What This Migration Creates: idempotency_log and its 4 indexes, the cleanup function,
    # the sync trigger function (body chosen by phase), the trigger on habit_tracker; later
    # phases add the reverse sync, the read-only guard, the archive (dualwrite/phases.py).
    migration = Migration013(config, owner)

    # Security: idempotency_log for service_role only; no EXECUTE for PUBLIC, anon, authenticated.
    Security(migration)

    # Phase 1 Activation Checklist: the pg_cron cleanup job, existing rows brought over
    # (in each phase that has them).
    if config.stage.cleanup_job or config.stage.backfill or config.stage.reverse_backfill:
        PhaseJobs(config, migration, owner)
    objects = sorted(migration.objects)
else:
    # Rollback Plan, option 3, declared: drop everything (the idempotency logs too).
    Removed(owner)
    objects = []

# As the stack file spells it: 0 .. 3 (numbers, as earlier releases exported them), "retired".
pulumi.export("phase", int(config.stage.key) if config.stage.key.isdigit() else config.stage.key)
pulumi.export("dual_write", config.dual_write)
pulumi.export("objects", objects)
