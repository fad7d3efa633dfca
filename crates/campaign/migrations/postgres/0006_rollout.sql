-- The variant an experiment rolled out to every new entrant, once its sequential test found it better.
ALTER TABLE campaigns ADD COLUMN winner TEXT;
ALTER TABLE campaigns ADD COLUMN rolled_out_at_us BIGINT;
