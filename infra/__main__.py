"""Migration 013: dual-write triggers, as a Pulumi program.

Reads like the deployment guide (../shared/seed/deployment-guide-013.md):
what the migration creates, its security notes, and the Phase 1 checklist.
The phase and the rollback state are stack config; see Pulumi.<stack>.yaml.
"""

import sys
from pathlib import Path

# The engine runs this file as a script; make `infra` importable as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi  # noqa: E402

from infra import program  # noqa: E402
from infra.stack_config import ConfigError, from_pulumi  # noqa: E402

# Config is parsed once; a bad value stops the preview here, before any connection.
try:
    config = from_pulumi()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None

# What this migration creates: 1. idempotency_log and its 4 indexes, 2. cleanup function,
# 3. sync trigger function (body chosen by phase), 4. the trigger on habit_tracker.
objects = program.migration_objects(config)

# Security notes: idempotency_log for service_role only; no EXECUTE for PUBLIC/anon/authenticated.
program.security(config, objects)

# Phase 1 activation checklist: pg_cron job for cleanup, existing rows brought over.
if config.phase == 1 and config.migration_present:
    program.phase_one(config, objects)

pulumi.export("phase", config.phase)
pulumi.export("dual_write", config.dual_write)
pulumi.export("objects", sorted(objects))
