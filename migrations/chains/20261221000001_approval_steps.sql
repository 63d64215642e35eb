-- Approval steps (definition.rs, approvals.rs): a step waits for a person's decision, and a run
-- with nothing else to do waits with it, held by no replica (no lease) until the decision or
-- the step's timeout.
ALTER TABLE chains.chain_runs DROP CONSTRAINT chain_runs_status_check;
ALTER TABLE chains.chain_runs ADD CONSTRAINT chain_runs_status_check
    CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'));
ALTER TABLE chains.chain_steps DROP CONSTRAINT chain_steps_status_check;
ALTER TABLE chains.chain_steps ADD CONSTRAINT chain_steps_status_check
    CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'skipped',
                      'cancelled'));
-- When a waiting step's approval times out.
ALTER TABLE chains.chain_steps ADD COLUMN waiting_until timestamptz;
-- When a waiting run is next claimed by itself: its earliest approval timeout.
ALTER TABLE chains.chain_runs ADD COLUMN wake_at timestamptz;
-- What the claim loop scans for waiting runs whose time has come.
CREATE INDEX chain_runs_waking_idx ON chains.chain_runs (wake_at) WHERE status = 'waiting';
-- A waiting run is unfinished: it counts against the tenant's quota of unfinished runs.
DROP INDEX chains.chain_runs_tenant_unfinished_idx;
CREATE INDEX chain_runs_tenant_unfinished_idx ON chains.chain_runs (tenant_id)
    WHERE status IN ('pending', 'running', 'waiting');
