-- Map steps (`for_each`, engine/map.rs): one row per item that ended, written as it ends,
-- so a run taken over mid-map keeps its finished items and runs only the others. Items still
-- running have no row; they are asked again under their fixed agent run ids.
CREATE TABLE chains.step_items (
    run_id        uuid NOT NULL REFERENCES chains.chain_runs (id) ON DELETE CASCADE,
    step_id       text NOT NULL,
    item_index    integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('completed', 'failed')),
    attempts      integer NOT NULL,
    output        jsonb,
    error_code    text,
    error_message text,
    PRIMARY KEY (run_id, step_id, item_index)
);

-- What a step is (`agent`, `map`, `approval`, `chain`), for the run's view of its steps.
ALTER TABLE chains.chain_steps ADD COLUMN kind text NOT NULL DEFAULT 'agent'
    CHECK (kind IN ('agent', 'map', 'approval', 'chain'));
UPDATE chains.chain_steps SET kind = 'approval' WHERE agent = '';
-- A chain step's child run of its latest attempt.
ALTER TABLE chains.chain_steps ADD COLUMN child_run_id uuid;

-- Sub-chains (engine/subchains.rs): a child run knows its parent run, the step that started it
-- and that step's attempt; one child per attempt, whichever replica starts it. `depth` is 0 for
-- a run started by a caller. A child calls agent-runner with the credential of the run at the
-- top of its family (`credential_run_id`), which outlives it.
ALTER TABLE chains.chain_runs
    ADD COLUMN parent_run_id uuid,
    ADD COLUMN parent_step text,
    ADD COLUMN parent_attempt integer,
    ADD COLUMN depth integer NOT NULL DEFAULT 0,
    ADD COLUMN credential_run_id uuid;
CREATE UNIQUE INDEX chain_runs_parent_step_key
    ON chains.chain_runs (parent_run_id, parent_step, parent_attempt)
    WHERE parent_run_id IS NOT NULL;
