-- Schedules (the triggers service): reading them, and changing them. Admins hold both through
-- `*:*`, developers both, viewers read.
INSERT INTO auth.permissions (name) VALUES ('schedules:read'), ('schedules:write');
INSERT INTO auth.role_permissions (role, permission) VALUES
    ('developer', 'schedules:read'), ('developer', 'schedules:write'),
    ('viewer', 'schedules:read');

-- A schedule's API key, made by the triggers service with its creator's token.
ALTER TABLE auth.api_keys DROP CONSTRAINT api_keys_purpose_check;
ALTER TABLE auth.api_keys ADD CONSTRAINT api_keys_purpose_check
    CHECK (purpose IN ('tool', 'chain_run', 'schedule'));
