-- The size of each value as it is read back (its jsonb written out as text), kept with the row:
-- a page of entries stops at a byte budget and a backup is bounded by bytes, both measured from
-- this column rather than by having Postgres write every value out only to count it.
ALTER TABLE memory.entries
    ADD COLUMN value_bytes integer GENERATED ALWAYS AS (octet_length(value::text)) STORED;
