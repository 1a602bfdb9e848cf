-- Which project and stack own migration 013 in this database (one row per migration).
--
-- A stack file copied from another and pointing at the same database would otherwise adopt
-- the objects the first stack manages, and destroying either would drop the other's objects.
-- The deploy claims this row before it creates or adopts anything, and refuses at preview
-- when another stack holds it; ownership moves only by `invoke take-ownership`.
--
-- A table in a private schema: transactional (a claim commits or not, with the deploy's first
-- step), it survives the transaction pooler (no session state), and the API roles can neither
-- read nor change it: the schema is not one PostgREST exposes, and PUBLIC and every API role
-- lose USAGE and every privilege in the transaction that creates it (the deploy role owns it).
CREATE SCHEMA IF NOT EXISTS habit_tracker_db;

REVOKE ALL ON SCHEMA habit_tracker_db FROM PUBLIC, anon, authenticated, service_role;

CREATE TABLE IF NOT EXISTS habit_tracker_db.owner (
    migration text PRIMARY KEY,
    project text NOT NULL,
    stack text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON TABLE habit_tracker_db.owner FROM PUBLIC, anon, authenticated, service_role;
