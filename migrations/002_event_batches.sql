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
        INSERT INTO event_runs (event_id, plugin_id)
          SELECT event_id, jsonb_array_elements_text(x->'plugins');
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
