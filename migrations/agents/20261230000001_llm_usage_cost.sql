-- What each tenant's LLM tokens of the day cost at the operator's prices (SANKALPA_LLM_PRICES),
-- in US dollars; 0 for the tokens of models without a price.
ALTER TABLE agents.llm_usage ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0 CHECK (cost_usd >= 0);
