-- Chain settings a tenant changed (GetChainSettings / UpdateChainSettings); a tenant without a
-- row has the service's defaults (SANKALPA_CHAINS_RUN_RETENTION_DAYS).
CREATE TABLE chains.tenant_settings (
    tenant_id           uuid PRIMARY KEY,
    -- Days a finished run is kept after it finished; 0 keeps runs forever.
    run_retention_days  integer NOT NULL CHECK (run_retention_days BETWEEN 0 AND 3650),
    updated_by          text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- What the retention sweep scans, oldest first: finished runs by when they finished.
CREATE INDEX chain_runs_finished_idx ON chains.chain_runs (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
