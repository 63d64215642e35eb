-- A step that completed but whose output could not be shared through the run's memory session
-- says so here; the run carries on (engine.rs, memory.rs).
ALTER TABLE chains.chain_steps ADD COLUMN warning text NOT NULL DEFAULT '';
