-- 001_schema.sql — departments, namespaces, plugin configs, plugin storage,
-- events and their runs, the audit log.

CREATE TABLE departments (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  parent_id   text REFERENCES departments(id),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX departments_parent ON departments(parent_id);

CREATE TABLE namespaces (
  id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  department_id    text NOT NULL REFERENCES departments(id),
  cache_generation bigint NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX namespaces_department ON namespaces(department_id);

CREATE TABLE namespace_plugins (
  namespace_id text NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  plugin_id    text NOT NULL CHECK (plugin_id ~ '^[a-z][a-z0-9_-]{0,63}$'),
  enabled      boolean NOT NULL DEFAULT true,
  config       jsonb NOT NULL DEFAULT '{}',
  version      bigint NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text NOT NULL,
  PRIMARY KEY (namespace_id, plugin_id)
);

CREATE TABLE plugin_kv (
  namespace_id text NOT NULL,
  plugin_id    text NOT NULL,
  key          text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 200),
  value        jsonb NOT NULL,
  expires_at   timestamptz,
  PRIMARY KEY (namespace_id, plugin_id, key)
);
CREATE INDEX plugin_kv_expiry ON plugin_kv(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE events (
  id              uuid PRIMARY KEY,
  namespace_id    text NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  type            text NOT NULL CHECK (type IN ('approval.created', 'document.ready')),
  payload         jsonb NOT NULL,
  idempotency_key text,
  status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_idempotency ON events(namespace_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events(created_at);

CREATE TABLE event_runs (
  event_id        uuid NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  plugin_id       text NOT NULL,
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'ok', 'error', 'timeout', 'memory',
                                    'retrying', 'skipped')),
  attempts        integer NOT NULL DEFAULT 0,
  delivery_id     uuid NOT NULL,
  lease_owner     text,
  lease_until     timestamptz,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  duration_ms     bigint,
  last_error      text,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, plugin_id)
);
CREATE INDEX event_runs_due ON event_runs(next_attempt_at)
  WHERE status IN ('queued', 'retrying', 'running');

CREATE TABLE audit_log (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  action       text NOT NULL,
  namespace_id text,
  plugin_id    text,
  before       jsonb,
  after        jsonb
);
CREATE INDEX audit_log_namespace ON audit_log(namespace_id, at);
