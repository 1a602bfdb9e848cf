"""Policy pack for migration 013: the rules a reviewer would otherwise have to check by eye.

Run by the real engine at preview (`invoke policy --stack S`, and in the pull-request
workflow); a mandatory violation fails the preview with its message.

- a SECURITY DEFINER function must pin its search_path (Supabase lint 0011 with 0028/0029);
- no object of 013 is granted to anon or authenticated;
- a stack whose trigger runs the Phase 1 body schedules the cleanup job;
- every table of 013 is declared as a `migration013:Table`, the type that is retained on
  delete and whose provider drops a table only while it is empty. (The policy API shows
  `protect` but not `retain_on_delete`, so the rule checks the type that sets it;
  tests/e2e check `retainOnDelete` in the exported state.)
"""

from __future__ import annotations

from pulumi_policy import (EnforcementLevel, PolicyPack, ReportViolation, ResourceValidationArgs,
                           ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy)

from dualwrite import parsed_sql
from dualwrite.catalog import CLEANUP_JOB, by_name
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


def phase_1_schedules_the_cleanup(args: StackValidationArgs, report: ReportViolation) -> None:
    props = {r.name: r.props for r in args.resources if "kind" in r.props}
    sync = props.get("sync_old_to_new", {})
    trigger = props.get("trigger_habit_tracker_dual_write", {})
    phase_1 = sync.get("checksum") == by_name("sync_old_to_new").checksum(1)
    if phase_1 and trigger.get("enabled") and not any(
            p.get("kind") == "cron_job" and p.get("name") == CLEANUP_JOB for p in props.values()):
        report(f"the trigger runs the Phase 1 body but no pg_cron job '{CLEANUP_JOB}' is declared: the guide's "
               "checklist schedules the cleanup in Phase 1.", None)


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
                              description="a Phase 1 stack schedules the cleanup job",
                              validate=phase_1_schedules_the_cleanup),
    ],
)
