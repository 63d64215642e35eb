-- Outbound webhooks (the triggers service): reading endpoints and deliveries, and changing
-- them. Admins hold both through `*:*`, developers both, viewers read.
INSERT INTO auth.permissions (name) VALUES ('webhooks:read'), ('webhooks:write');
INSERT INTO auth.role_permissions (role, permission) VALUES
    ('developer', 'webhooks:read'), ('developer', 'webhooks:write'),
    ('viewer', 'webhooks:read');
