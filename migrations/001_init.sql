-- 001_init.sql — AgentCore's schema: tenancy, plugin configs, plugin KV,
-- events with their per-plugin runs, audit log (docs/api.md, docs/operations.md).
-- Applied by `agentcore migrate` (engine/db/migrate.c) in one transaction.

-- Ids of departments and namespaces (docs/api.md). Generated ids are UUIDs,
-- which match too.
CREATE DOMAIN ac_id AS text
  CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$');

-- Plugin ids (docs/plugin-authoring.md).
CREATE DOMAIN ac_plugin_id AS text
  CHECK (VALUE ~ '^[a-z][a-z0-9_-]{0,63}$');

-- ---------------------------------------------------------------- tenancy

CREATE TABLE departments (
  id         ac_id PRIMARY KEY,
  name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  parent_id  ac_id REFERENCES departments (id) ON DELETE RESTRICT,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX departments_parent ON departments (parent_id);

-- Inserts cannot make a cycle (the parent must already exist); an update of
-- parent_id could, and scope checks walk this tree, so refuse it.
CREATE FUNCTION ac_departments_no_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.parent_id IS NOT NULL AND EXISTS (
    WITH RECURSIVE up(id) AS (
      SELECT NEW.parent_id
      UNION
      SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id
       WHERE d.parent_id IS NOT NULL)
    SELECT 1 FROM up WHERE id = NEW.id) THEN
    RAISE EXCEPTION 'department % cannot be its own ancestor', NEW.id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER departments_no_cycle BEFORE UPDATE OF parent_id ON departments
  FOR EACH ROW EXECUTE FUNCTION ac_departments_no_cycle();

-- cache_generation: bumped (by trigger, below) on every write to the
-- namespace's plugin configs; instances compare it to drop stale caches.
CREATE TABLE namespaces (
  id               ac_id PRIMARY KEY,
  name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  department_id    ac_id NOT NULL REFERENCES departments (id) ON DELETE RESTRICT,
  cache_generation bigint NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX namespaces_department ON namespaces (department_id);

-- ---------------------------------------------------------- plugin configs

-- version starts at 1 and is bumped by trigger on every UPDATE, whatever the
-- statement sets, so If-Match (`... WHERE version = $n`) and the ETag can
-- rely on it. config is stored with secrets in clear (masking is the API's
-- job) and defaults applied.
CREATE TABLE namespace_plugins (
  namespace_id ac_id NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
  plugin_id    ac_plugin_id NOT NULL,
  enabled      boolean NOT NULL DEFAULT true,
  config       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
  version      bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text NOT NULL CHECK (char_length(updated_by) <= 256),
  PRIMARY KEY (namespace_id, plugin_id)
);
CREATE INDEX namespace_plugins_plugin ON namespace_plugins (plugin_id);

CREATE FUNCTION ac_namespace_plugins_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := OLD.version + 1;
  NEW.created_at := OLD.created_at;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER namespace_plugins_version BEFORE UPDATE ON namespace_plugins
  FOR EACH ROW EXECUTE FUNCTION ac_namespace_plugins_version();

-- Every config write bumps the namespace's cache generation and notifies
-- the other instances on channel "agentcore_config" in the same transaction
-- (docs/operations.md): listeners see it only if, and as soon as, the write commits.
-- Payload: {"namespaceId","pluginId","generation","op"}.
CREATE FUNCTION ac_namespace_plugins_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  r   namespace_plugins%ROWTYPE;
  gen bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  UPDATE namespaces SET cache_generation = cache_generation + 1
   WHERE id = r.namespace_id
  RETURNING cache_generation INTO gen;
  PERFORM pg_notify('agentcore_config', json_build_object(
    'namespaceId', r.namespace_id, 'pluginId', r.plugin_id,
    'generation', gen, 'op', lower(TG_OP))::text);
  RETURN NULL;
END $$;
CREATE TRIGGER namespace_plugins_notify
  AFTER INSERT OR UPDATE OR DELETE ON namespace_plugins
  FOR EACH ROW EXECUTE FUNCTION ac_namespace_plugins_notify();

-- Outcome of init(context) per (namespace, plugin, config version, plugin
-- code version) (docs/plugin-authoring.md): a failed init skips the plugin in that namespace
-- until either version changes.
CREATE TABLE plugin_init_state (
  namespace_id   ac_id NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
  plugin_id      ac_plugin_id NOT NULL,
  config_version bigint NOT NULL,
  plugin_version text NOT NULL DEFAULT '',
  status         text NOT NULL CHECK (status IN ('ok', 'error', 'timeout', 'memory')),
  error          text,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace_id, plugin_id)
);

-- ------------------------------------------------------------- plugin KV

-- context.db (docs/plugin-authoring.md). value is JSON stored as jsonb (normalised: key
-- order and whitespace are not kept). Rows past expires_at are invisible to
-- reads and purged in batches (engine/db/kv_pg.c).
CREATE TABLE plugin_kv (
  namespace_id ac_id NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
  plugin_id    ac_plugin_id NOT NULL,
  key          text NOT NULL CHECK (octet_length(key) <= 200),
  value        jsonb NOT NULL,
  expires_at   timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace_id, plugin_id, key)
);
CREATE INDEX plugin_kv_expiry ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;

-- ------------------------------------------------------------------ events

-- An accepted event (docs/api.md, "Host flow"). payload is the request body
-- (approvalId/documentId, data). status: queued -> running -> done.
-- idempotency_key is unique per namespace while it is live; it lives 24 h:
-- ac_event_put() releases an older holder of the key before inserting.
CREATE TABLE events (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  namespace_id    ac_id NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
  type            text NOT NULL CHECK (type IN ('approval.created', 'document.ready')),
  payload         jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
  status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_idempotency ON events (namespace_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_namespace_created ON events (namespace_id, created_at);
CREATE INDEX events_open ON events (created_at) WHERE status <> 'done';

-- Stores an event, honouring its idempotency key for 24 hours. Returns the
-- id of the stored event and whether this call created it (false: the key
-- was used within 24 h and event_id is the first event's). Concurrent calls
-- with one key serialise on the unique index, so exactly one creates.
CREATE FUNCTION ac_event_put(p_id uuid, p_namespace text, p_type text, p_payload jsonb,
                             p_key text, OUT event_id uuid, OUT created boolean)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_key IS NOT NULL THEN
    UPDATE events SET idempotency_key = NULL
     WHERE namespace_id = p_namespace AND idempotency_key = p_key
       AND created_at <= now() - interval '24 hours';
  END IF;
  INSERT INTO events (id, namespace_id, type, payload, idempotency_key)
  VALUES (p_id, p_namespace, p_type, p_payload, p_key)
  ON CONFLICT (namespace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
  DO NOTHING
  RETURNING events.id INTO event_id;
  IF FOUND THEN
    created := true;
    RETURN;
  END IF;
  SELECT e.id INTO event_id FROM events e
   WHERE e.namespace_id = p_namespace AND e.idempotency_key = p_key;
  created := false;
END $$;

-- One row per (event, plugin) to run (docs/api.md). status:
--   queued    not yet tried            running  leased by lease_owner
--   retrying  waiting for next_attempt_at after context.retry
--   ok | error | timeout | memory | skipped    final
-- delivery_id is stable across attempts (receivers dedupe on it).
-- Claiming: when a worker leases a run it sets status 'running',
-- lease_until = now() + lease and next_attempt_at = lease_until, so one
-- condition finds both due runs and expired leases, through one index:
--   SELECT ... FROM event_runs
--    WHERE status IN ('queued', 'retrying', 'running') AND next_attempt_at <= now()
--    ORDER BY next_attempt_at LIMIT $n FOR UPDATE SKIP LOCKED
CREATE TABLE event_runs (
  event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  plugin_id       ac_plugin_id NOT NULL,
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'retrying',
                                    'ok', 'error', 'timeout', 'memory', 'skipped')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  delivery_id     uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  lease_owner     text,
  lease_until     timestamptz,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  duration_ms     bigint,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, plugin_id)
);
CREATE INDEX event_runs_due ON event_runs (next_attempt_at)
  WHERE status IN ('queued', 'retrying', 'running');

-- --------------------------------------------------------------- audit log

-- Config and tenancy changes (docs/api.md). before/after have secrets masked
-- by the writer. No foreign keys: the trail outlives what it describes.
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
CREATE INDEX audit_log_namespace ON audit_log (namespace_id, at);
