-- The app's tables, exactly per the schema contract of issue 4. Real environments
-- already have them; only the local stack and the tests apply this file, so it is
-- idempotent (IF NOT EXISTS) and never touches existing rows.

-- Old schema: one sheet per child per week, habits as a JSON array.
CREATE TABLE IF NOT EXISTS public.habit_tracker (
    -- bigserial, not an identity column: this file mirrors the table real environments
    -- already have, and the tests must run against that shape.
    -- squawk-ignore prefer-identity
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL,
    child_name text NOT NULL,
    week_start_date date NOT NULL,
    week_period text,
    habits jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT habit_tracker_user_child_week_key UNIQUE (user_id, child_name, week_start_date)
);

-- New, normalized schema. Every unique constraint below doubles as the index that the
-- dual-write trigger, the backfill and ON DELETE CASCADE look rows up by.
CREATE TABLE IF NOT EXISTS public.children (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT children_user_id_name_key UNIQUE (user_id, name)
);

CREATE TABLE IF NOT EXISTS public.weeks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    child_id uuid NOT NULL REFERENCES public.children (id) ON DELETE CASCADE,
    week_start_date date NOT NULL,
    week_period text,
    -- The habit_tracker.id this week mirrors; NULL for weeks written only through the new path.
    legacy_id bigint CONSTRAINT weeks_legacy_id_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT weeks_child_id_week_start_date_key UNIQUE (child_id, week_start_date)
);

CREATE TABLE IF NOT EXISTS public.habits (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    week_id uuid NOT NULL REFERENCES public.weeks (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- integer: the contract's type, and an index into one sheet's habits array never
    -- comes near 32 bits.
    -- squawk-ignore prefer-bigint-over-int
    position integer NOT NULL, -- index in habit_tracker.habits, from 0
    CONSTRAINT habits_week_id_position_key UNIQUE (week_id, position)
);

CREATE TABLE IF NOT EXISTS public.habit_records (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    habit_id uuid NOT NULL REFERENCES public.habits (id) ON DELETE CASCADE,
    record_date date NOT NULL, -- week_start_date + day index (Monday = 0)
    status text NOT NULL CONSTRAINT habit_records_status_check CHECK (status IN ('green', 'yellow', 'red')),
    CONSTRAINT habit_records_habit_id_record_date_key UNIQUE (habit_id, record_date)
);
