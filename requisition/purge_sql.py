"""PostgreSQL: the purge's own bookkeeping written only through functions a purging role
may call (installed by schema v6, requisition/migrations.py)."""

from __future__ import annotations

# The purge's bookkeeping (which segments a run claims, deletes or gives back; the run's
# own row) is written only through these, by the owner or an agent whose role may record
# `footage.destroy`: no operator can plant an interrupted run, claim footage for one, or
# mark footage destroyed to hide it from an extraction.
PG_PURGE = [
    """CREATE FUNCTION scelle_may_purge() RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      IF session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class
                         WHERE oid = 'purge_run'::regclass) THEN
        RETURN;
      END IF;
      IF NOT EXISTS (
        SELECT 1 FROM agent g JOIN ledger_policy p ON p.action = 'footage.destroy'
        WHERE g.login = session_user AND g.active
          AND g.role = ANY (string_to_array(p.roles, ','))) THEN
        RAISE EXCEPTION '% may not run the purge', session_user;
      END IF;
    END $$""",
    """CREATE FUNCTION scelle_purge_run_new(started text, as_of text, actor text,
                                          segments bigint, size bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE run bigint;
    BEGIN
      PERFORM scelle_may_purge();
      INSERT INTO purge_run (started_at, now_utc, actor, state, segments, bytes, failures)
        VALUES (started, as_of, actor, 'intent', segments, size, 0) RETURNING id INTO run;
      RETURN run;
    END $$""",
    """CREATE FUNCTION scelle_purge_run_set(run bigint, new_state text, new_failures int,
        new_certificate text, new_intent text, new_outcome text, new_tally text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_may_purge();
      UPDATE purge_run SET state = COALESCE(new_state, state),
        failures = COALESCE(new_failures, failures),
        certificate = COALESCE(new_certificate, certificate),
        intent_seqs = COALESCE(new_intent, intent_seqs),
        outcome_seqs = COALESCE(new_outcome, outcome_seqs),
        tally = COALESCE(new_tally, tally)
      WHERE id = run;
    END $$""",
    """CREATE FUNCTION scelle_purge_mark(run bigint, ids bigint[], mark text, at text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_may_purge();
      IF mark = 'claim' THEN
        UPDATE segment SET purge_run = run
          WHERE id = ANY (ids) AND purge_run IS NULL AND destroyed_at IS NULL;
      ELSIF mark = 'destroyed' THEN
        UPDATE segment SET destroyed_at = at WHERE id = ANY (ids) AND purge_run = run;
      ELSIF mark = 'release' THEN
        UPDATE segment SET purge_run = NULL
          WHERE id = ANY (ids) AND purge_run = run AND destroyed_at IS NULL;
      ELSE
        RAISE EXCEPTION 'unknown purge mark %', mark;
      END IF;
    END $$""",
]

# v14: a certified run's segment rows leave the footage index for `destroyed_period`
# rows. Only whole ingest batches whose every row is destroyed by certified runs, and only
# with periods that sum, run by run and camera by camera, to the rows they replace.
PG_COMPACT = [
    """CREATE FUNCTION scelle_purge_compact(batches bigint[], periods jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_may_purge();
      IF EXISTS (SELECT 1 FROM segment s LEFT JOIN purge_run r ON r.id = s.purge_run
                 WHERE s.batch_id = ANY (batches)
                   AND (s.destroyed_at IS NULL OR r.certificate IS NULL
                        OR r.state NOT IN ('done', 'partial'))) THEN
        RAISE EXCEPTION 'a batch with live or uncertified rows is not compacted';
      END IF;
      IF EXISTS (SELECT 1 FROM jsonb_array_elements(periods) e
                 WHERE (e->>'segments')::bigint < 1 OR (e->>'tail_segments')::bigint < 0
                    OR (e->>'tail_segments')::bigint > (e->>'segments')::bigint
                    OR (e->>'start_us')::bigint > (e->>'end_us')::bigint
                    OR e->>'destroyed_at' > e->>'last_destroyed_at'
                    OR e->>'destroyed_at' < (SELECT min(destroyed_at) FROM segment
                         WHERE batch_id = ANY (batches)
                           AND purge_run = (e->>'purge_run')::bigint)
                    OR e->>'last_destroyed_at' > (SELECT max(destroyed_at) FROM segment
                         WHERE batch_id = ANY (batches)
                           AND purge_run = (e->>'purge_run')::bigint)) THEN
        RAISE EXCEPTION 'a period is not one the segment rows could make';
      END IF;
      IF EXISTS (
          (SELECT purge_run, camera_id, count(*)::numeric, sum(size)::numeric,
                  min(start_us), max(end_us)
             FROM segment WHERE batch_id = ANY (batches) GROUP BY 1, 2
           EXCEPT
           SELECT (e->>'purge_run')::bigint, e->>'camera_id', sum((e->>'segments')::numeric),
                  sum((e->>'bytes')::numeric), min((e->>'start_us')::bigint),
                  max((e->>'end_us')::bigint)
             FROM jsonb_array_elements(periods) e GROUP BY 1, 2)
          UNION ALL
          (SELECT (e->>'purge_run')::bigint, e->>'camera_id', sum((e->>'segments')::numeric),
                  sum((e->>'bytes')::numeric), min((e->>'start_us')::bigint),
                  max((e->>'end_us')::bigint)
             FROM jsonb_array_elements(periods) e GROUP BY 1, 2
           EXCEPT
           SELECT purge_run, camera_id, count(*)::numeric, sum(size)::numeric,
                  min(start_us), max(end_us)
             FROM segment WHERE batch_id = ANY (batches) GROUP BY 1, 2)) THEN
        RAISE EXCEPTION 'the periods do not sum to the segment rows they replace';
      END IF;
      INSERT INTO destroyed_period (purge_run, camera_id, start_us, end_us, segments, bytes,
                                    destroyed_at, last_destroyed_at, cut_us, tail_segments,
                                    tail_start_us, tail_destroyed_at)
        SELECT (e->>'purge_run')::bigint, e->>'camera_id', (e->>'start_us')::bigint,
               (e->>'end_us')::bigint, (e->>'segments')::int, (e->>'bytes')::bigint,
               e->>'destroyed_at', e->>'last_destroyed_at', (e->>'cut_us')::bigint,
               (e->>'tail_segments')::int,
               (e->>'tail_start_us')::bigint, e->>'tail_destroyed_at'
          FROM jsonb_array_elements(periods) e;
      DELETE FROM segment WHERE batch_id = ANY (batches);
    END $$""",
]

FUNCTIONS = (
    "scelle_may_purge()",
    "scelle_purge_run_new(text, text, text, bigint, bigint)",
    "scelle_purge_run_set(bigint, text, integer, text, text, text, text)",
    "scelle_purge_mark(bigint, bigint[], text, text)",
    "scelle_purge_compact(bigint[], jsonb)",
)
