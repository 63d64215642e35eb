-- A run accepted while agent-runner could not be asked whether its agents exist has this false;
-- the engine checks them before the run's first step, and fails the run with `unknown_agent`
-- when one does not exist (catalog.rs, engine.rs).
ALTER TABLE chains.chain_runs ADD COLUMN agents_checked boolean NOT NULL DEFAULT true;
