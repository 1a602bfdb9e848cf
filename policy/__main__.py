"""Policy pack for migration 013: the rules a reviewer would otherwise have to check by eye.

Run by the real engine at preview (`invoke policy --stack S`, and in the pull-request
workflow); a mandatory violation fails the preview with its message.

- a SECURITY DEFINER function must pin its search_path (Supabase lint 0011 with 0028/0029);
- no object of 013 is granted to anon or authenticated;
- a stack in a phase that schedules the cleanup job (dualwrite/phases.py: Phase 1 with its trigger
  firing, Phase 2 on) declares it;
- a stack declares only objects its phase has (no forward trigger in Phase 3, no trigger at all
  once retired), the phase read from what it declares;
- every table of 013 is declared as a `migration013:Table`, the type that is retained on
  delete and whose provider drops a table only while it is empty. (The policy API shows
  `protect` but not `retain_on_delete`, so the rule checks the type that sets it;
  tests/e2e check `retainOnDelete` in the exported state.)
"""

from __future__ import annotations

from typing import Any, Mapping

from pulumi_policy import (EnforcementLevel, PolicyPack, ReportViolation, ResourceValidationArgs,
                           ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy)

from dualwrite import parsed_sql, phases
from dualwrite.catalog import CLEANUP_JOB, GUIDE_TRIGGER, MIGRATION_013, by_name
from dualwrite.objects.privileges import API_ROLES

TABLE_TYPE = "pulumi-python:dynamic/migration013:Table"


def security_definer_pins_search_path(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("kind") not in ("function", "procedure"):
        return
    for function in parsed_sql.function_attributes(str(args.props.get("sql") or ""), args.name):
        if function.security_definer and function.search_path is None:
            report(f"{args.name}: a SECURITY DEFINER function must pin its search_path (SET search_path = ''), or "
                   "anyone who can create an object it names runs code with the owner's rights.", None)


def no_grants_to_api_roles(args: ResourceValidationArgs, report: ReportViolation) -> None:
    granted = [role for role in (args.props.get("privileges") or {}) if role in API_ROLES]
    for declared in args.props.get("declared") or []:
        granted += [f"{declared['name']}: {role}" for role in declared.get("privileges", {}) if role in API_ROLES]
    # GRANT statements in the object's own SQL (function bodies are not statements of the file).
    granted += [role for role in parsed_sql.grantees(str(args.props.get("sql") or ""), args.name) if role in API_ROLES]
    if granted:
        report(f"{args.name}: migration 013's tables and functions are never granted to {', '.join(API_ROLES)} "
               f"(found: {', '.join(granted)}); the Edge Function uses service_role.", None)


def tables_are_retained(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("kind") == "table" and args.resource_type != TABLE_TYPE:
        report(f"{args.name}: a table of 013 must be a {TABLE_TYPE} (retained on delete, never dropped while it "
               f"holds rows), not a {args.resource_type}.", None)


def declared_phase(props: Mapping[str, Mapping[str, Any]]) -> phases.Phase:
    """The phase a stack's resources show: the last phase after Phase 1 whose own objects (those the phase
    before it lacks) are all declared; else Phase 1 or 0 by the sync body."""
    names = set(props)
    for phase in reversed(phases.PATH[2:]):
        own = phase.objects - (phases.BY_KEY[phase.before].objects if phase.before else frozenset())
        if own and own <= names:
            return phase
    phase_1 = props.get("sync_old_to_new", {}).get("checksum") == by_name("sync_old_to_new").checksum(1)
    return phases.at(1 if phase_1 else 0)


def _object_props(args: StackValidationArgs) -> dict[str, Mapping[str, Any]]:
    """The stack's objects of 013 by name; the archive the phase before retirement declares, not yet
    archived (`archived: false`, objects/archive.py), is no object of that phase."""
    return {r.name: r.props for r in args.resources if "kind" in r.props and r.props.get("archived") is not False}


def phase_schedules_the_cleanup(args: StackValidationArgs, report: ReportViolation) -> None:
    props = _object_props(args)
    phase = declared_phase(props)
    firing = props.get(GUIDE_TRIGGER, {}).get("enabled") or phase.order > 1
    if phase.cleanup_job and firing and not any(
            p.get("kind") == "cron_job" and p.get("name") == CLEANUP_JOB for p in props.values()):
        what = "the trigger runs the Phase 1 body" if phase.order == 1 else f"the stack runs {phase.label}"
        report(f"{what} but no pg_cron job '{CLEANUP_JOB}' is declared: the guide's checklist schedules the "
               "cleanup in Phase 1, and every later phase keeps it (it serves the Edge Function).", None)


def only_the_phases_objects(args: StackValidationArgs, report: ReportViolation) -> None:
    props = _object_props(args)
    phase = declared_phase(props)
    ours = {obj.name for obj in MIGRATION_013}
    extra = sorted(name for name in props if name in ours and name not in phase.objects)
    if extra:
        report(f"the stack runs {phase.label}, which has no {', '.join(extra)} (dualwrite/phases.py); a phase "
               "is one line of the stack file, and each step adds and drops its objects as a whole.", None)


PolicyPack(
    name="habit-tracker-db-policy",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name="security-definer-search-path",
                                 description="SECURITY DEFINER functions pin search_path",
                                 validate=security_definer_pins_search_path),
        ResourceValidationPolicy(name="no-api-role-grants",
                                 description="no table or function of 013 is granted to anon or authenticated",
                                 validate=no_grants_to_api_roles),
        ResourceValidationPolicy(name="tables-retained",
                                 description="tables that hold rows are retained on delete",
                                 validate=tables_are_retained),
        StackValidationPolicy(name="phase-1-cleanup-job",
                              description="a stack in Phase 1 or later schedules the cleanup job",
                              validate=phase_schedules_the_cleanup),
        StackValidationPolicy(name="phase-objects",
                              description="a stack declares only the objects of its phase",
                              validate=only_the_phases_objects),
    ],
)
