-- Schedules: a chain started by the triggers service on a cron expression or an interval, with
-- the API key it runs with (see services/triggers/src/schedules.rs).
CREATE TABLE triggers.schedules (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    name               text NOT NULL DEFAULT '',
    -- Exactly one of a cron expression (read in time_zone) and an interval.
    cron               text,
    time_zone          text NOT NULL DEFAULT 'UTC',
    interval_seconds   bigint,
    -- What runs: a stored chain (its id, at its latest version) or a template's name.
    chain_id           uuid,
    template           text,
    input              jsonb NOT NULL DEFAULT '{}',
    overlap            text NOT NULL CHECK (overlap IN ('skip', 'buffer_one', 'allow')),
    catch_up           text NOT NULL CHECK (catch_up IN ('none', 'last', 'all')),
    catch_up_window_seconds bigint NOT NULL DEFAULT 0,
    jitter_seconds     integer NOT NULL DEFAULT 0,
    paused             boolean NOT NULL DEFAULT false,
    -- The next tick (a time of the expression); earlier ticks are fired or given up.
    next_tick_at       timestamptz,
    -- When a replica should look at the schedule next: the next tick plus its jitter, or sooner
    -- to fire a buffered tick once the run in the way has finished.
    due_at             timestamptz,
    -- buffer_one: the tick waiting for the running run to finish.
    buffered_tick_at   timestamptz,
    last_tick_at       timestamptz,
    last_run_id        uuid,
    last_error         text NOT NULL DEFAULT '',
    -- The API key (purpose SCHEDULE) ticks run with, kept as the key itself: it is exchanged
    -- for access tokens.
    key_id             text NOT NULL,
    secret             text NOT NULL,
    key_expires_at     timestamptz NOT NULL,
    created_by         text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (interval_seconds IS NULL)),
    CHECK ((chain_id IS NULL) <> (template IS NULL))
);
CREATE INDEX schedules_tenant_idx ON triggers.schedules (tenant_id, created_at DESC, id DESC);
CREATE INDEX schedules_due_idx ON triggers.schedules (due_at) WHERE NOT paused;

