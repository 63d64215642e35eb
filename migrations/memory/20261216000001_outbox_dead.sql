-- Outbox rows the relay could never publish (larger than NATS accepts, an invalid subject),
-- moved aside with the reason so the events behind them go out (sankalpa_kit::outbox).
CREATE TABLE memory.outbox_dead (
    id          bigint PRIMARY KEY,
    event       jsonb NOT NULL,
    headers     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL
);
