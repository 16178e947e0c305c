-- Runs carry their event's namespace, so a claim can take turns across
-- namespaces (fair delivery: one namespace's backlog does not delay the
-- others') through an index per namespace. Runs inserted without it take
-- their event's.
ALTER TABLE event_runs ADD COLUMN namespace_id ac_id;
UPDATE event_runs r SET namespace_id = e.namespace_id FROM events e WHERE e.id = r.event_id;
ALTER TABLE event_runs ALTER COLUMN namespace_id SET NOT NULL;
CREATE INDEX event_runs_due_by_namespace ON event_runs (namespace_id, next_attempt_at)
  WHERE status IN ('queued', 'retrying', 'running');

CREATE FUNCTION ac_event_runs_namespace() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.namespace_id IS NULL THEN
    SELECT e.namespace_id INTO NEW.namespace_id FROM events e WHERE e.id = NEW.event_id;
    IF NOT FOUND THEN -- what the foreign key would say
      RAISE foreign_key_violation USING MESSAGE = 'the run''s event does not exist';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER event_runs_namespace BEFORE INSERT ON event_runs
  FOR EACH ROW EXECUTE FUNCTION ac_event_runs_namespace();

-- Events arrive in batches (group commit, engine/db/intake.c): one call
-- stores every event of a batch with its runs, in order, and wakes the
-- dispatchers once. Each event is what ac_event_put makes of it (its
-- idempotency key honoured, inside the batch too); an event with no run to
-- do is done at once. Returns one row per event: its position (1-based),
-- its id, whether this call created it, and its status (for an event the
-- key found, the stored event's).
CREATE FUNCTION ac_events_put_batch(p_events jsonb, p_channel text)
RETURNS TABLE (ord int, event_id uuid, created boolean, status text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  x jsonb;
  woke boolean := false;
BEGIN
  ord := 0;
  FOR x IN SELECT value FROM jsonb_array_elements(p_events) LOOP
    ord := ord + 1;
    SELECT p.event_id, p.created INTO event_id, created
      FROM ac_event_put(gen_random_uuid(), x->>'ns', x->>'type', x->'payload', x->>'key') p;
    IF created THEN
      IF jsonb_array_length(x->'plugins') > 0 THEN
        INSERT INTO event_runs (event_id, plugin_id, namespace_id)
          SELECT event_id, jsonb_array_elements_text(x->'plugins'), x->>'ns';
        status := 'queued';
        woke := true;
      ELSE
        UPDATE events e SET status = 'done', updated_at = now() WHERE e.id = event_id;
        status := 'done';
      END IF;
    ELSE
      SELECT e.status INTO status FROM events e WHERE e.id = event_id;
    END IF;
    RETURN NEXT;
  END LOOP;
  IF woke THEN
    PERFORM pg_notify(p_channel, '');
  END IF;
END $$;

-- Outcomes are recorded in batches too: each run of p_runs (an array of
-- {eventId, pluginId, status, durationMs, error, retryInMs, refund}) that
-- p_owner still leases takes its outcome (refund: its claim was no
-- attempt); then every event left with no run to do is done. The events'
-- row locks are taken in id order, so batches of two workers cannot
-- deadlock, and each event is checked in a statement of its
-- own, whose snapshot sees every finish committed before its lock was
-- granted (two runs of one event finishing at once on two workers).
-- Returns how many runs were recorded.
CREATE FUNCTION ac_events_finish_batch(p_owner text, p_runs jsonb)
RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  x jsonb;
  ev uuid;
  recorded int := 0;
  closing uuid[] := '{}';
BEGIN
  FOR x IN SELECT value FROM jsonb_array_elements(p_runs) LOOP
    UPDATE event_runs r
       SET status = x->>'status', duration_ms = (x->>'durationMs')::bigint,
           last_error = x->>'error', lease_owner = NULL, lease_until = NULL, updated_at = now(),
           attempts = r.attempts - CASE WHEN (x->>'refund')::boolean THEN 1 ELSE 0 END,
           next_attempt_at = CASE WHEN x->>'status' = 'retrying'
             THEN now() + make_interval(secs => (x->>'retryInMs')::bigint / 1000.0)
             ELSE r.next_attempt_at END
     WHERE r.event_id = (x->>'eventId')::uuid AND r.plugin_id = x->>'pluginId'
       AND r.lease_owner = p_owner;
    IF FOUND THEN
      recorded := recorded + 1;
      IF x->>'status' <> 'retrying' THEN
        closing := closing || (x->>'eventId')::uuid;
      END IF;
    END IF;
  END LOOP;
  FOR ev IN SELECT DISTINCT u FROM unnest(closing) u ORDER BY u LOOP
    PERFORM 1 FROM events e WHERE e.id = ev FOR UPDATE;
    UPDATE events e SET status = 'done', updated_at = now()
     WHERE e.id = ev AND e.status <> 'done'
       AND NOT EXISTS (SELECT 1 FROM event_runs r WHERE r.event_id = ev
                        AND r.status IN ('queued', 'running', 'retrying'));
  END LOOP;
  RETURN recorded;
END $$;
