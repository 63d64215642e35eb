-- Model providers (agent-runner): every member reads them (which models exist, which is the
-- default); only admins, through `*:*`, change or test them (`models:admin`).
INSERT INTO auth.permissions (name) VALUES ('models:read'), ('models:admin');
INSERT INTO auth.role_permissions (role, permission) VALUES
    ('developer', 'models:read'),
    ('viewer', 'models:read');
