-- The per-tenant quota of unfinished runs counts them at every submission (runs.rs): an index
-- of unfinished runs by tenant keeps that count to the few rows it counts.
CREATE INDEX chain_runs_tenant_unfinished_idx ON chains.chain_runs (tenant_id)
    WHERE status IN ('pending', 'running');
