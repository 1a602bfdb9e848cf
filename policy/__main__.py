"""Policy pack for migration 013 (issue 10 part 7). Blocked: see README "Policy pack"."""

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy, ReportViolation, ResourceValidationArgs


def security_definer_pins_search_path(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    text = str(args.props.get("sql") or "")
    upper = text.upper()
    if "SECURITY DEFINER" in upper and "SET SEARCH_PATH" not in upper:
        report_violation(f"{args.name}: a SECURITY DEFINER function must pin search_path (SET search_path = '')")


PolicyPack(
    name="habit-tracker-db-policy",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name="security-definer-search-path",
                                       description="SECURITY DEFINER functions pin search_path",
                                       validate=security_definer_pins_search_path)],
)
