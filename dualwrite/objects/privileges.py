"""Who may use an object of migration 013: the statements every table and function runs with its CREATE.

Supabase's default privileges grant everything `postgres` creates in `public` to anon,
authenticated and service_role (ALL on tables, EXECUTE on functions), the moment it is
created. So each object's REVOKE and GRANT run in the same transaction as its CREATE (no
committed moment where the API roles can use it, a killed deploy included), and again on
every update and by the Security component's `privileges` resource, which watches the ACLs.

`privileges` maps a role to what it keeps, e.g. {"service_role": ["EXECUTE"]}; every other
role of PUBLIC, anon, authenticated and service_role keeps nothing.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from psycopg import sql

API_ROLES = ("anon", "authenticated")
SERVICE_ROLE = "service_role"
# Everyone a Supabase project lets reach `public` besides the owner.
REVOKED_FROM = ("PUBLIC", *API_ROLES, SERVICE_ROLE)
ALLOWED = {"TABLE": {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"},
           "FUNCTION": {"EXECUTE"}, "PROCEDURE": {"EXECUTE"}}


def _roles(names: Sequence[str]) -> sql.Composable:
    # PUBLIC is a keyword, not a role name: it must stay unquoted.
    return sql.SQL(", ").join(sql.SQL("PUBLIC") if n == "PUBLIC" else sql.Identifier(n) for n in names)


def statements(keyword: str, target: sql.Composable, privileges: Mapping[str, Sequence[str]]) -> list[sql.Composed]:
    """REVOKE ALL from everyone, then GRANT what each role keeps: one idempotent pair per object."""
    out = [sql.SQL("REVOKE ALL ON {} {} FROM {}").format(sql.SQL(keyword), target, _roles(REVOKED_FROM))]
    for role, granted in sorted(privileges.items()):
        unknown = set(granted) - ALLOWED[keyword]
        if unknown:
            raise ValueError(f"{keyword} privileges {sorted(unknown)} for {role}: allowed {sorted(ALLOWED[keyword])}")
        out.append(sql.SQL("GRANT {} ON {} {} TO {}").format(
            sql.SQL(", ").join(sql.SQL(p) for p in granted), sql.SQL(keyword), target, sql.Identifier(role)))
    return out
