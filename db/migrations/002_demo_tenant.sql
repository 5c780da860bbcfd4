-- db/migrations/002_demo_tenant.sql — the `demo` tenant that `scripts/up`
-- mints a token for, connected to the sandbox CRM (its API key comes from
-- the worker's environment, so the connection row holds no secret).
INSERT INTO tenants (id, name, plan)
VALUES ('demo', 'Demo tenant', 'pro')
ON CONFLICT (id) DO NOTHING;

SELECT set_config('switchboard.tenant_id', 'demo', true);   -- this transaction only

INSERT INTO connections (tenant_id, connector, status)
VALUES ('demo', 'sandbox-crm', 'connected')
ON CONFLICT (tenant_id, connector) DO NOTHING;

INSERT INTO audit_log (tenant_id, actor, action, detail)
VALUES ('demo', 'migration', 'tenant_created', '{"migration": "002_demo_tenant"}');
