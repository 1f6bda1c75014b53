"""PostgreSQL (v16): appends queued, then grouped into one tree update and one commit.

A linear log's appends are serialised, so one commit per append caps the site at one
fsync per entry (and 8 agents queue behind one another's round trips). Transparency logs
batch instead; so does this: `scelle_submit` queues an agent's entries in
`ledger_pending` (the login stamped from session_user; checked there, outside the lock,
for everything that does not depend on the log's state) and, if nobody holds the ledger's
lock, appends at once everything queued. Otherwise the caller waits in `scelle_await`:
whoever holds the lock appends ALL queued rows in arrival order in one transaction, each
checked against the login that queued it (a row refused is marked with its reason, the
others go on: since v17 the group goes in under one savepoint, and again one savepoint a
row only when one is refused). A caller returns only once its row is appended
by a committed transaction and its own acknowledging commit is durable: that commit's WAL
record follows the appending one, so flushing it flushes that one too, whatever the
appending session's synchronous_commit. Since v19 scelle makes both calls in one round
trip, the procedure `scelle_queued_append`, which commits between them.

`ledger_pending` is the owner's: agents reach it only through these functions, which
insert rows in the session's own name and let a session read, acknowledge or withdraw
only its own rows. A row whose caller died is appended by the next group anyway (it was
queued by an authenticated login, and checked); its result, unread, is dropped once that
session is gone.

Bytes: an entry's seq and time are known only when it is appended, so the caller sends
each entry in two pieces, the canonical bytes before its seq and those between its seq
and its time (custody/ledger.py `pieces`); the entry is `head || seq || mid || time ||
'","v":1}'`. The pieces are checked as a whole entry with seq 0 and a placeholder time
(`scelle_entry_shape`): an integer and a time of that fixed ASCII form put in their place
keep the bytes canonical, and the entry made is checked again for its seq and time.

v16 also splits `scelle_append` (still the path of `append_in`, an entry committed with
the caller's own change) into those checks and `scelle_entry_add` (the log's state, the
tree, the audit index), shared by both paths; the author trigger now lets the owner's
functions insert an entry for the login that queued it.
"""

from __future__ import annotations

from custody import pg_ledger
from custody.db import LOCK_WAIT_SECONDS

# The bytes after an entry's time, and the placeholders its pieces are checked with.
TAIL = b'","v":1}'
PLACEHOLDER_TIME = "2000-01-01T00:00:00.000000Z"

_OWNER = "(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'ledger_entry'::regclass)"

# (v18) The queue holds a few rows at a time in a heap a minute of appends swells to
# thousands of pages until VACUUM, and ANALYZE (autovacuum's, at any moment) may find it
# empty. A session keeps its plans: ones made on such statistics scanned the whole heap
# to read the queue and mark its rows, a millisecond a statement (a round of
# bench/pg_append.py fell from 2,000 to 1,600 appends a second after each ANALYZE). The
# functions that read it scan its heap only where no index can serve. Such a statement
# (the drop of results left unread, which has no index; nested, the agent's row looked up
# by a login of collation "C", session_user's, which its primary key cannot serve) keeps
# its seq scan, priced at 10^10 by the setting: past jit_above_cost, LLVM compiled it at
# every run (20-160 ms, the ledger's lock held), so these functions compile no plan.
QUEUE_PLANS = "SET enable_seqscan = off SET jit = off"

PG_V16 = [
    # An entry inserted by one of the owner's functions was checked by it for its
    # author (the session's login, or the login that queued it).
    """CREATE OR REPLACE FUNCTION scelle_entry_author() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF session_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
         AND current_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class
                              WHERE oid = TG_RELID)
         AND (convert_from(NEW.body, 'UTF8')::jsonb ->> 'actor') IS DISTINCT FROM session_user
      THEN
        RAISE EXCEPTION USING MESSAGE =
          'a ledger entry must name the session''s own role (' || session_user || ')';
      END IF;
      RETURN NEW;
    END $$""",
    # scelle_canonical (v6) as it was, but writing an integer member or element itself
    # rather than by a call of its own (a third of its calls on an entry: v and seq), and
    # (v17) reading an object's members once: a key that sorts otherwise in UTF-16 (a
    # character from U+E000 up) is rare, and only then are they read again in that order.
    r"""CREATE OR REPLACE FUNCTION scelle_canonical(j jsonb) RETURNS text LANGUAGE plpgsql
    IMMUTABLE STRICT AS $$
    DECLARE t text := jsonb_typeof(j); n text; s text; odd boolean;
    BEGIN
      IF t = 'object' THEN
        SELECT string_agg(to_json(key)::text || ':' || CASE
                            WHEN jsonb_typeof(value) IN ('object', 'array') THEN
                              scelle_canonical(value)
                            WHEN jsonb_typeof(value) <> 'number' THEN value::text
                            WHEN value::text ~ '^-?(0|[1-9][0-9]{0,15})$'
                                 AND value::text <> '-0'
                                 AND abs(value::text::numeric) <= 9007199254740991 THEN
                              value::text
                            ELSE scelle_canonical(value) END, ','
                          ORDER BY convert_to(key, 'UTF8')),
               bool_or(key ~ '[-􏿿]')
          INTO s, odd FROM jsonb_each(j);
        IF odd THEN
          s := (SELECT string_agg(to_json(key)::text || ':' || scelle_canonical(value), ','
                                  ORDER BY scelle_utf16(key))
                FROM jsonb_each(j));
        END IF;
        RETURN '{' || COALESCE(s, '') || '}';
      ELSIF t = 'array' THEN
        RETURN '[' || COALESCE((
          SELECT string_agg(CASE
                              WHEN jsonb_typeof(x) IN ('object', 'array') THEN scelle_canonical(x)
                              WHEN jsonb_typeof(x) <> 'number' THEN x::text
                              WHEN x::text ~ '^-?(0|[1-9][0-9]{0,15})$' AND x::text <> '-0'
                                   AND abs(x::text::numeric) <= 9007199254740991 THEN x::text
                              ELSE scelle_canonical(x) END, ',' ORDER BY i)
          FROM jsonb_array_elements(j) WITH ORDINALITY AS a(x, i)), '') || ']';
      ELSIF t = 'number' THEN
        n := j::text;
        IF n !~ '^-?(0|[1-9][0-9]*)$' OR n = '-0' OR abs(n::numeric) > 9007199254740991 THEN
          RAISE EXCEPTION 'number % is not an integer JSON holds exactly', n;
        END IF;
        RETURN n;
      END IF;
      RETURN j::text;  -- a string, true, false, null
    END $$""",
    # A row is inserted, updated once (appended or refused) and deleted by its caller:
    # room left on its page keeps that update HOT (no new index entry).
    """CREATE TABLE ledger_pending (
      id BIGSERIAL PRIMARY KEY,
      login TEXT NOT NULL,
      pid INTEGER NOT NULL,
      heads BYTEA[] NOT NULL,
      mids BYTEA[] NOT NULL,
      queued_at TIMESTAMPTZ NOT NULL,
      expires_at TIMESTAMPTZ NOT NULL,
      seq BIGINT,
      at TEXT,
      refusal TEXT,
      refusal_code TEXT,
      done_at TIMESTAMPTZ
    ) WITH (fillfactor = 50)""",
    # What a group reads: the rows still queued, however many finished ones wait to be
    # read or dropped.
    "CREATE INDEX ledger_pending_queued ON ledger_pending (id) WHERE seq IS NULL "
    "AND refusal IS NULL",
    "REVOKE ALL ON ledger_pending FROM PUBLIC",
    "REVOKE ALL ON SEQUENCE ledger_pending_id_seq FROM PUBLIC",
    # What an entry's bytes alone must be (no state read): canonical RFC 8785 JSON, the
    # entry's fields and types, seq `seq`, a time of the stored form, the login's own
    # name (the owner's may name anyone), and the fields the purge and workflow read.
    """CREATE FUNCTION scelle_entry_shape(b bytea, seq bigint, login text, is_owner boolean,
      label text) RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
    DECLARE
      e jsonb; subj jsonb; dat jsonb; act text;
      fields text[] := ARRAY['action', 'actor', 'data', 'procedure', 'reason', 'seq', 'subject',
                             'time', 'v'];
    BEGIN
      BEGIN
        e := convert_from(b, 'UTF8')::jsonb;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'ledger entry %: not JSON text', label;
      END;
      -- (v19) An entry of exactly these fields, its seq and v as written here and text
      -- where text goes is canonical as its fields in this order, of which only subject
      -- and data need canonicalising: the same bytes as the whole's, which sorted nine
      -- members (appends went 7 % faster here without this check at all). Anything else
      -- is canonicalised whole.
      IF jsonb_typeof(e) <> 'object' OR convert_to(CASE
           WHEN e ?& fields AND e - fields = '{}'::jsonb AND (e -> 'seq')::text = seq::text
                AND (e -> 'v')::text = '1' AND jsonb_typeof(e -> 'action') = 'string'
                AND jsonb_typeof(e -> 'actor') = 'string'
                AND jsonb_typeof(e -> 'reason') = 'string'
                AND jsonb_typeof(e -> 'time') = 'string'
                AND jsonb_typeof(e -> 'procedure') IN ('string', 'null') THEN
             '{"action":' || (e -> 'action')::text || ',"actor":' || (e -> 'actor')::text
             || ',"data":' || scelle_canonical(e -> 'data') || ',"procedure":'
             || (e -> 'procedure')::text || ',"reason":' || (e -> 'reason')::text
             || ',"seq":' || seq::text || ',"subject":' || scelle_canonical(e -> 'subject')
             || ',"time":' || (e -> 'time')::text || ',"v":1}'
           ELSE scelle_canonical(e) END, 'UTF8') <> b THEN
        RAISE EXCEPTION 'ledger entry %: not canonical JSON (RFC 8785)', label;
      END IF;
      IF NOT e ?& fields OR e - fields <> '{}'::jsonb
         OR e -> 'v' <> '1'::jsonb OR e -> 'seq' <> to_jsonb(seq)
         OR jsonb_typeof(e -> 'actor') <> 'string' OR jsonb_typeof(e -> 'time') <> 'string'
         OR jsonb_typeof(e -> 'action') <> 'string' OR jsonb_typeof(e -> 'reason') <> 'string'
         OR jsonb_typeof(e -> 'data') <> 'object'
         OR jsonb_typeof(e -> 'subject') NOT IN ('string', 'object')
         OR jsonb_typeof(e -> 'procedure') NOT IN ('string', 'null') THEN
        RAISE EXCEPTION 'ledger entry %: not a scelle ledger entry with the next seq', label;
      END IF;
      IF btrim(e ->> 'reason') = '' OR (e ->> 'procedure') ~ '^\\s*$'
         OR (e ->> 'action') !~ '^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)*$' THEN
        RAISE EXCEPTION 'ledger entry %: bad action, empty reason or empty procedure', label;
      END IF;
      subj := e -> 'subject';
      dat := e -> 'data';
      IF jsonb_typeof(subj -> 'cameras') NOT IN ('array', 'null')
         OR jsonb_typeof(dat -> 'windows') NOT IN ('array', 'null') THEN
        RAISE EXCEPTION 'ledger entry %: cameras and windows must be lists', label;
      END IF;
      IF NOT is_owner AND e ->> 'actor' <> login THEN
        RAISE EXCEPTION 'a ledger entry must name the session''s own role (%)', login;
      END IF;
      IF (e ->> 'time') !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$'
      THEN
        RAISE EXCEPTION 'ledger entry %: time % is not the server''s time', label, e ->> 'time';
      END IF;
      act := e ->> 'action';
      -- What the purge and the workflow decide from must be readable by every reader:
      -- a malformed hold or handover, appended once, would stop them for good.
      IF (act = 'hold.place' AND NOT (
            jsonb_typeof(subj -> 'camera') = 'string'
            AND COALESCE((subj ->> 'hold') ~ '^[1-9][0-9]{0,17}$', false)
            AND scelle_is_utc(dat ->> 'from_utc') AND scelle_is_utc(dat ->> 'to_utc')))
         OR (act = 'hold.release'
             AND NOT COALESCE((subj ->> 'hold') ~ '^[1-9][0-9]{0,17}$', false))
         OR (act = 'requisition.handover' AND NOT scelle_is_utc(dat ->> 'at'))
         OR (act = 'requisition.export'
             AND NOT COALESCE((dat ->> 'manifest_sha256') ~ '^[0-9a-f]{64}$', false)) THEN
        RAISE EXCEPTION 'ledger entry %: a % entry without the fields scelle reads', label, act;
      END IF;
      IF act = 'access.refused' AND NOT is_owner
         AND (jsonb_typeof(subj) <> 'object' OR subj ->> 'agent' IS DISTINCT FROM login) THEN
        RAISE EXCEPTION 'a refusal names the refused login itself';
      END IF;
      RETURN e;
    END $$""",
    # The tree's right edge at size n: the hashes of its perfect subtrees, largest first.
    """CREATE FUNCTION scelle_frontier(n bigint) RETURNS bytea[] LANGUAGE plpgsql STABLE
    SET search_path = public, pg_temp AS $$
    DECLARE found bytea[]; k int;
    BEGIN
      SELECT array_agg(x.hash ORDER BY x.level DESC), count(*) INTO found, k
        FROM generate_series(0, 62) l JOIN ledger_node x
          ON x.level = l.l AND x.idx = (n >> (l.l + 1)) << 1
        WHERE (n >> l.l) & 1 = 1;
      IF k <> length(replace(n::bit(64)::text, '0', '')) THEN
        RAISE EXCEPTION 'the ledger tree is damaged: a frontier node is missing';
      END IF;
      RETURN COALESCE(found, '{}');
    END $$""",
    # Entries n, n+1, ... (their bytes' own shape already checked) checked against the
    # log's state and stored, with what is derived from their bytes; the caller holds the
    # ledger's lock and gives the log's last time and its frontier (returned pushed). The
    # checks: the next seq, the server's time in order, an action `login`'s role may
    # record, four eyes where the workflow asks them. Then the tree nodes and the audit
    # index row.
    """CREATE FUNCTION scelle_entries_add(login text, is_owner boolean, bodies bytea[],
      n bigint, last_time text, frontier bytea[]) RETURNS bytea[] LANGUAGE plpgsql
    SET search_path = public, pg_temp AS $$
    DECLARE
      now_text text := scelle_utc(clock_timestamp());
      earliest text := scelle_utc(clock_timestamp() - interval '2 minutes');
      agent_role text; agent_active boolean; allowed text;
      b bytea; e jsonb; t text; act text; subj jsonb; dat jsonb;
      req text; proc text; unit text; rproc text; runit text;
      h bytea; lvl int; ix bigint; lv int[]; ixs bigint[]; hs bytea[];
    BEGIN
      IF NOT is_owner THEN
        SELECT g.role, g.active INTO agent_role, agent_active FROM agent g
          WHERE g.login = scelle_entries_add.login;
      END IF;
      FOREACH b IN ARRAY bodies LOOP
        e := convert_from(b, 'UTF8')::jsonb;
        t := e ->> 'time';
        act := e ->> 'action';
        subj := e -> 'subject';
        dat := e -> 'data';
        IF e -> 'seq' <> to_jsonb(n) THEN
          RAISE EXCEPTION 'ledger entry %: not a scelle ledger entry with the next seq', n;
        END IF;
        IF NOT is_owner AND e ->> 'actor' IS DISTINCT FROM login THEN  -- as the shape said
          RAISE EXCEPTION 'a ledger entry must name the session''s own role (%)', login;
        END IF;
        IF t COLLATE "C" < COALESCE(last_time, '') COLLATE "C"
           OR t COLLATE "C" > now_text COLLATE "C" OR t COLLATE "C" < earliest COLLATE "C" THEN
          RAISE EXCEPTION 'ledger entry %: time % is not the server''s time (after %, by %)',
            n, t, COALESCE(last_time, 'the start'), now_text;
        END IF;
        IF NOT is_owner THEN
          IF act <> 'access.refused' THEN
            IF agent_role IS NULL OR NOT agent_active THEN
              RAISE EXCEPTION '% is not an active designated agent', login;
            END IF;
            allowed := (SELECT p.roles FROM ledger_policy p WHERE p.action = act);
            IF allowed IS NULL OR NOT agent_role = ANY (string_to_array(allowed, ',')) THEN
              RAISE EXCEPTION '% (%) may not record %', login, agent_role, act;
            END IF;
          END IF;
          IF act IN ('requisition.approve', 'requisition.deny') THEN
            IF NOT EXISTS (SELECT 1 FROM ledger_audit a WHERE a.action = 'requisition.register'
                           AND a.requisition = subj ->> 'requisition')
               OR EXISTS (SELECT 1 FROM ledger_audit a WHERE a.action = 'requisition.register'
                          AND a.requisition = subj ->> 'requisition'
                          AND lower(btrim(a.actor)) = lower(btrim(login))) THEN
              RAISE EXCEPTION
                '% registered requisition % (or it is unknown): another supervisor decides',
                login, subj ->> 'requisition';
            END IF;
          ELSIF act = 'hold.release' THEN
            IF NOT EXISTS (SELECT 1 FROM scelle_hold_placers(subj -> 'hold'))
               OR EXISTS (SELECT 1 FROM scelle_hold_placers(subj -> 'hold') p
                          WHERE lower(btrim(p.placer)) = lower(btrim(login))) THEN
              RAISE EXCEPTION
                '% placed hold % (or it is unknown): another supervisor releases it',
                login, subj -> 'hold';
            END IF;
          END IF;
        END IF;
        -- The tree: the leaf, and the perfect nodes it completes with the frontier.
        h := sha256('\\x00'::bytea || b);
        lvl := 0; ix := n; lv := ARRAY[0]; ixs := ARRAY[n]; hs := ARRAY[h];
        WHILE ix % 2 = 1 LOOP
          h := sha256('\\x01'::bytea || frontier[array_length(frontier, 1)] || h);
          frontier := frontier[1 : array_length(frontier, 1) - 1];
          lvl := lvl + 1;
          ix := ix / 2;
          lv := lv || lvl;
          ixs := ixs || ix;
          hs := hs || h;
        END LOOP;
        frontier := frontier || h;
        -- The audit index row, derived as custody/audit.py derive() does.
        req := CASE WHEN jsonb_typeof(subj -> 'requisition') = 'string'
                    AND subj ->> 'requisition' <> '' THEN subj ->> 'requisition' END;
        proc := NULLIF(CASE WHEN jsonb_typeof(e -> 'procedure') = 'string'
                            THEN e ->> 'procedure' END, '');
        unit := COALESCE(
          NULLIF(CASE WHEN jsonb_typeof(dat -> 'officer_unit') = 'string'
                      THEN dat ->> 'officer_unit' END, ''),
          NULLIF(CASE WHEN jsonb_typeof(dat -> 'unit') = 'string' THEN dat ->> 'unit' END, ''));
        IF req IS NOT NULL THEN
          SELECT a.procedure, a.unit INTO rproc, runit FROM ledger_audit a
            WHERE a.action = 'requisition.register' AND a.requisition = req
            ORDER BY a.seq DESC LIMIT 1;
          IF FOUND THEN
            proc := COALESCE(proc, rproc);
            unit := COALESCE(unit, runit);
          END IF;
        END IF;
        INSERT INTO ledger_entry (seq, body) VALUES (n, b);
        -- nodes, index row and cameras in one statement (the entry's row is there now)
        WITH nodes AS (
          INSERT INTO ledger_node (level, idx, hash) SELECT * FROM unnest(lv, ixs, hs)
        ), indexed AS (
          INSERT INTO ledger_audit (seq, time, actor, action, requisition, procedure, unit)
            VALUES (n, t, e ->> 'actor', act, req, proc, unit)
        )
        INSERT INTO ledger_audit_camera (camera, seq)
          SELECT DISTINCT c, n FROM (
            SELECT subj ->> 'camera' AS c WHERE jsonb_typeof(subj -> 'camera') = 'string'
            UNION ALL
            SELECT x #>> '{}' FROM jsonb_array_elements(
              CASE WHEN jsonb_typeof(subj -> 'cameras') = 'array' THEN subj -> 'cameras'
                   ELSE '[]'::jsonb END) x
            WHERE jsonb_typeof(x) = 'string'
            UNION ALL
            SELECT w ->> 'camera' FROM jsonb_array_elements(
              CASE WHEN jsonb_typeof(dat -> 'windows') = 'array' THEN dat -> 'windows'
                   ELSE '[]'::jsonb END) w
            WHERE jsonb_typeof(w -> 'camera') = 'string'
          ) named WHERE c <> '';
        last_time := t;
        n := n + 1;
      END LOOP;
      RETURN frontier;
    END $$""",
    # append_in's path: whole entries, in the caller's own transaction and name.
    """CREATE OR REPLACE FUNCTION scelle_append(bodies bytea[]) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
      is_owner boolean := session_user = """
    + _OWNER
    + """;
      n bigint; last_time text;
    BEGIN
      PERFORM scelle_take('ledger');
      n := (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry);
      last_time := (SELECT a.time FROM ledger_audit a WHERE a.seq = n - 1);
      FOR i IN 1 .. COALESCE(array_length(bodies, 1), 0) LOOP
        PERFORM scelle_entry_shape(bodies[i], n + i - 1, session_user, is_owner,
                                   (n + i - 1)::text);
      END LOOP;
      PERFORM scelle_entries_add(session_user, is_owner, bodies, n, last_time,
                                 scelle_frontier(n));
    END $$""",
    # Append every queued row, in arrival order, each all or nothing (a row refused is
    # marked with the reason, the others go on), then `own` group if given
    # (scelle_submit's, not queued), whose outcome is returned. The caller holds the
    # ledger's lock. The rows are locked first, so that their callers wait for this
    # transaction. (v17) The rows go in together, in one savepoint; only if one is refused
    # are they appended again one savepoint each (a savepoint costs its own subtransaction,
    # and refusals are rare). Results left unread by a caller whose session is gone are
    # dropped.
    """CREATE FUNCTION scelle_drain(own_login text, own_heads bytea[], own_mids bytea[],
      OUT seq bigint, OUT at text, OUT refusal text, OUT refusal_code text)
    LANGUAGE plpgsql SET search_path = public, pg_temp """
    + QUEUE_PLANS
    + """ AS $$
    DECLARE
      owner_login text := """
    + _OWNER
    + """;
      r record; n bigint; last_time text; t text; frontier bytea[];
      first_n bigint; first_time text; first_frontier bytea[]; queued bigint[];
      one_by_one boolean := false; turns text[] := '{}'; i int;
      done_ids bigint[] := '{}'; done_seqs bigint[] := '{}'; done_ats text[] := '{}';
      no_ids bigint[] := '{}'; no_reasons text[] := '{}'; no_codes text[] := '{}';
    BEGIN
      IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ledger appends run at READ COMMITTED, not %',
          current_setting('transaction_isolation');
      END IF;
      n := (SELECT COALESCE(MAX(x.seq) + 1, 0) FROM ledger_entry x);
      last_time := (SELECT a.time FROM ledger_audit a WHERE a.seq = n - 1);
      frontier := scelle_frontier(n);
      -- Locked here, outside any savepoint (one rolled back would let go of its locks).
      -- A row another session holds is being withdrawn or read: left for a later group.
      -- (From the oldest row still there, which the primary key finds at once: the
      -- partial index keeps the entries of rows long gone until the next VACUUM, and a
      -- scan from its start walked all of them, a minute's worth of appends.)
      FOR r IN SELECT p.id FROM ledger_pending p
               WHERE p.seq IS NULL AND p.refusal IS NULL
                 AND p.id >= (SELECT min(o.id) FROM ledger_pending o)
               ORDER BY p.id FOR UPDATE SKIP LOCKED LOOP
        queued := queued || r.id;
      END LOOP;
      first_n := n;
      first_time := last_time;
      first_frontier := frontier;
      -- The group under one savepoint; if a row is refused, all of it again with one
      -- savepoint a row (then whatever else fails is raised: no third pass).
      WHILE queued IS NOT NULL LOOP
        BEGIN
          n := first_n;
          last_time := first_time;
          frontier := first_frontier;
          done_ids := '{}';
          done_seqs := '{}';
          done_ats := '{}';
          no_ids := '{}';
          no_reasons := '{}';
          no_codes := '{}';
          i := 0;
          FOR r IN SELECT p.id, p.login, p.heads, p.mids, p.expires_at FROM ledger_pending p
                   WHERE p.id = ANY (queued) ORDER BY p.id LOOP
            i := i + 1;
            -- A row the first pass reached had its turn then: the per-row pass decides
            -- it as of that turn, at its time (as v16 did), not once the rows after it
            -- (an agent's long one refused at its end, say) have run, unless that time
            -- is too old for the log (scelle_entries_add: 2 minutes).
            IF one_by_one AND i <= COALESCE(array_length(turns, 1), 0)
               AND (turns[i] IS NULL OR turns[i] COLLATE "C"
                    >= scelle_utc(clock_timestamp() - interval '1 minute') COLLATE "C") THEN
              t := turns[i];
            ELSIF r.expires_at < clock_timestamp() THEN
              t := NULL;
            ELSE
              t := scelle_utc(clock_timestamp());
            END IF;
            IF NOT one_by_one THEN
              turns := turns || t;
            END IF;
            -- A row past its caller's wait when its turn comes (however long the rows
            -- before it took): its caller was told "not known", so it is final.
            IF t IS NULL THEN
              no_ids := no_ids || r.id;
              -- (::text: an untyped literal beside an array would be read as one)
              no_reasons := no_reasons
                            || 'queued entries not appended within the wait allowed'::text;
              no_codes := no_codes || '55P03'::text;
              CONTINUE;
            END IF;
            t := GREATEST(t COLLATE "C", COALESCE(last_time, '') COLLATE "C");
            IF one_by_one THEN
              BEGIN
                frontier := scelle_entries_add(r.login, r.login = owner_login,
                                               scelle_bodies(r.heads, r.mids, n, t), n,
                                               last_time, frontier);
              EXCEPTION WHEN OTHERS THEN
                no_ids := no_ids || r.id;
                no_reasons := no_reasons || SQLERRM;
                no_codes := no_codes || SQLSTATE;
                CONTINUE;
              END;
            ELSE
              frontier := scelle_entries_add(r.login, r.login = owner_login,
                                             scelle_bodies(r.heads, r.mids, n, t), n,
                                             last_time, frontier);
            END IF;
            done_ids := done_ids || r.id;
            done_seqs := done_seqs || n;
            done_ats := done_ats || t;
            n := n + array_length(r.heads, 1);
            last_time := t;
          END LOOP;
          EXIT;
        EXCEPTION WHEN OTHERS THEN
          IF one_by_one THEN
            RAISE;
          END IF;
          one_by_one := true;
        END;
      END LOOP;
      IF own_heads IS NOT NULL THEN
        t := GREATEST(scelle_utc(clock_timestamp()) COLLATE "C",
                      COALESCE(last_time, '') COLLATE "C");
        BEGIN
          PERFORM scelle_entries_add(own_login, own_login = owner_login,
                                     scelle_bodies(own_heads, own_mids, n, t), n, last_time,
                                     frontier);
          seq := n;
          at := t;
        EXCEPTION WHEN OTHERS THEN
          refusal := SQLERRM;
          refusal_code := SQLSTATE;
        END;
      END IF;
      -- Row by row, through the primary key: a join with unnest() was planned as a scan
      -- of the whole queue, array_position() grows with the square of a group.
      FOR i IN 1 .. COALESCE(array_length(done_ids, 1), 0) LOOP
        UPDATE ledger_pending p SET seq = done_seqs[i], at = done_ats[i],
          done_at = clock_timestamp() WHERE p.id = done_ids[i];
      END LOOP;
      FOR i IN 1 .. COALESCE(array_length(no_ids, 1), 0) LOOP
        UPDATE ledger_pending p SET refusal = no_reasons[i], refusal_code = no_codes[i],
          done_at = clock_timestamp() WHERE p.id = no_ids[i];
      END LOOP;
      IF (SELECT p.queued_at < clock_timestamp() - interval '1 minute' FROM ledger_pending p
          ORDER BY p.id LIMIT 1) THEN
        DELETE FROM ledger_pending p WHERE p.id IN (
          SELECT q.id FROM ledger_pending q
          WHERE q.done_at < clock_timestamp() - interval '1 minute'
            AND (q.done_at < clock_timestamp() - interval '1 hour'
                 OR NOT EXISTS (SELECT 1 FROM pg_stat_activity s
                                WHERE s.pid = q.pid AND s.usename = q.login))
          FOR UPDATE SKIP LOCKED);
      END IF;
    END $$""",
    # A queued group's entries: seq n, n+1, ... and time t put in their pieces.
    # (plpgsql: a SQL function here would be planned again at every call)
    """CREATE FUNCTION scelle_bodies(heads bytea[], mids bytea[], n bigint, t text)
    RETURNS bytea[] LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE made bytea[] := '{}'; tail bytea := convert_to(t || '","v":1}', 'UTF8');
    BEGIN
      FOR i IN 1 .. COALESCE(array_length(heads, 1), 0) LOOP
        made := made || (heads[i] || convert_to((n + i - 1)::text, 'UTF8') || mids[i] || tail);
      END LOOP;
      RETURN made;
    END $$""",
    # Check entries (pieces, see the module's doc) as the session's own; if nobody holds
    # the ledger's lock, append everything queued and then them, now (the caller's commit
    # makes it durable; seq or refusal is returned). Otherwise queue them and return the
    # row's id, for scelle_await after the caller's commit, which need not wait for the
    # disk: until its entries are appended, nobody was told anything.
    """CREATE FUNCTION scelle_submit(heads bytea[], mids bytea[], OUT id bigint, OUT seq bigint,
      OUT at text, OUT refusal text, OUT refusal_code text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
      k int := COALESCE(array_length(heads, 1), 0); b bytea;
      is_owner boolean := session_user = """
    + _OWNER
    + """;
      designated boolean; ignored text;
    BEGIN
      IF current_setting('lock_timeout') = '0' THEN
        ignored := set_config('lock_timeout', '"""
    + f"{LOCK_WAIT_SECONDS}s"
    + """', true);
      END IF;
      designated := is_owner OR EXISTS (SELECT 1 FROM agent g WHERE g.login = session_user
                                                               AND g.active);
      IF k = 0 OR k <> COALESCE(array_length(mids, 1), 0) OR array_ndims(heads) <> 1
         OR array_ndims(mids) <> 1 THEN
        RAISE EXCEPTION 'queued entries come as pieces before their seq and their time';
      END IF;
      FOR i IN 1 .. k LOOP
        IF heads[i] IS NULL OR mids[i] IS NULL
           OR substring(heads[i] FROM length(heads[i]) - 5) <> convert_to('"seq":', 'UTF8')
           OR substring(mids[i] FROM 1 FOR 11) <> convert_to(',"subject":', 'UTF8')
           OR substring(mids[i] FROM length(mids[i]) - 8) <> convert_to(',"time":"', 'UTF8')
        THEN
          RAISE EXCEPTION 'queued entry %: not pieces of an entry around its seq and time', i;
        END IF;
        b := heads[i] || convert_to('0', 'UTF8') || mids[i]
             || convert_to('"""
    + PLACEHOLDER_TIME
    + """","v":1}', 'UTF8');
        IF (scelle_entry_shape(b, 0, session_user, is_owner, 'queued ' || i) ->> 'action')
           <> 'access.refused' AND NOT designated THEN  -- nothing else to queue for others
          RAISE EXCEPTION '% is not an active designated agent', session_user;
        END IF;
      END LOOP;
      IF (SELECT EXISTS (SELECT 1 FROM scelle_lock l WHERE l.name = 'ledger'
                         FOR UPDATE SKIP LOCKED)) THEN
        SELECT d.seq, d.at, d.refusal, d.refusal_code INTO seq, at, refusal, refusal_code
          FROM scelle_drain(session_user, heads, mids) d;
        ignored := set_config('synchronous_commit', 'on', true);
      ELSE
        -- past the caller's wait its outcome was "not known yet": then never appended
        INSERT INTO ledger_pending (login, pid, heads, mids, queued_at, expires_at)
          VALUES (session_user, pg_backend_pid(), heads, mids, clock_timestamp(),
                  clock_timestamp() + current_setting('lock_timeout')::interval)
          RETURNING ledger_pending.id INTO id;
        ignored := set_config('synchronous_commit', 'off', true);
      END IF;
    END $$""",
    # Wait for one's queued row: first for a group that holds it (it is being appended),
    # then, if it is still queued, for the ledger's lock; its holder either appended the
    # row meanwhile (then let go of the lock at once: its savepoint rolled back) or this
    # session appends every queued row itself. The row is then read and deleted, in the
    # caller's transaction, whose durable commit makes the appending one durable too.
    # A wait past lock_timeout (`lock_wait` unless the session set one) withdraws the row
    # instead (refusal_code 55P03), unless a group holds it (SC002: its outcome unknown
    # yet, never "nothing was written").
    """CREATE FUNCTION scelle_await(queued bigint, lock_wait text, OUT seq bigint, OUT at text,
      OUT refusal text, OUT refusal_code text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp """
    + QUEUE_PLANS
    + """ AS $$
    DECLARE mine boolean; waiting boolean; ignored text;
    BEGIN
      IF current_setting('lock_timeout') = '0' THEN
        ignored := set_config('lock_timeout', lock_wait, true);
      END IF;
      SELECT p.login = session_user, p.seq IS NULL AND p.refusal IS NULL INTO mine, waiting
        FROM ledger_pending p WHERE p.id = queued;
      IF mine IS NOT TRUE THEN
        RAISE EXCEPTION 'no entries queued by % as %', session_user, queued;
      END IF;
      FOR attempt IN 1 .. 2 LOOP
        EXIT WHEN NOT waiting;
        BEGIN
          IF attempt = 1 THEN  -- the row once the group that holds it (if one does) ends
            SELECT p.seq IS NULL AND p.refusal IS NULL INTO waiting FROM ledger_pending p
              WHERE p.id = queued FOR KEY SHARE;
            RAISE EXCEPTION USING ERRCODE = 'SC001';  -- only waited for it: let go
          END IF;
          PERFORM 1 FROM scelle_lock l WHERE l.name = 'ledger' FOR UPDATE;
          SELECT p.seq IS NULL AND p.refusal IS NULL INTO waiting FROM ledger_pending p
            WHERE p.id = queued;
          IF NOT waiting THEN
            RAISE EXCEPTION USING ERRCODE = 'SC001';  -- appended meanwhile: let go
          END IF;
          PERFORM scelle_drain(NULL, NULL, NULL);
        EXCEPTION
          WHEN SQLSTATE 'SC001' THEN NULL;
          WHEN lock_not_available THEN
            DELETE FROM ledger_pending p WHERE p.id = (
              SELECT q.id FROM ledger_pending q WHERE q.id = queued AND q.seq IS NULL
                AND q.refusal IS NULL FOR UPDATE SKIP LOCKED);
            IF FOUND THEN  -- "nothing was written": said after a durable commit too
              refusal := SQLERRM;
              refusal_code := SQLSTATE;
              ignored := set_config('synchronous_commit', 'on', true);
              RETURN;
            END IF;
            SELECT p.seq IS NULL AND p.refusal IS NULL INTO waiting FROM ledger_pending p
              WHERE p.id = queued;
            IF waiting THEN  -- a group holds it still: not withdrawn, not known either
              refusal := format('the entries queued as %s are still being appended by another '
                                'session after %s: the ledger will say whether they were',
                                queued, current_setting('lock_timeout'));
              refusal_code := 'SC002';
              RETURN;
            END IF;
        END;
      END LOOP;
      DELETE FROM ledger_pending p WHERE p.id = queued
        RETURNING p.seq, p.at, p.refusal, p.refusal_code INTO seq, at, refusal, refusal_code;
      ignored := set_config('synchronous_commit', 'on', true);
    END $$""",
    # A caller interrupted while waiting takes its row back if no group has taken it yet
    # (true; false: a group holds it, or it was appended or refused: scelle_await tells
    # which). It never waits: a group holding the row is left to end.
    """CREATE FUNCTION scelle_withdraw(queued bigint) RETURNS boolean LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp """
    + QUEUE_PLANS
    + """ AS $$
    BEGIN
      DELETE FROM ledger_pending p WHERE p.id = (
        SELECT q.id FROM ledger_pending q WHERE q.id = queued AND q.login = session_user
          AND q.seq IS NULL AND q.refusal IS NULL FOR UPDATE SKIP LOCKED);
      RETURN FOUND;
    END $$""",
]

# Granted to the application role (custody/pg_ledger.py grant_statements).
FUNCTIONS = [
    "scelle_submit(bytea[], bytea[])",
    "scelle_await(bigint, text)",
    "scelle_withdraw(bigint)",
    "scelle_queued_append(bytea[], bytea[], text)",
]
# Called only by those (as the owner): nobody else's to call.
INTERNAL = [
    "scelle_entry_shape(bytea, bigint, text, boolean, text)",
    "scelle_frontier(bigint)",
    "scelle_entries_add(text, boolean, bytea[], bigint, text, bytea[])",
    "scelle_drain(text, bytea[], bytea[])",
    "scelle_bodies(bytea[], bytea[], bigint, text)",
]
PG_V16 += [f"REVOKE ALL ON FUNCTION {f} FROM PUBLIC" for f in INTERNAL]


def _definition(statements: list[str], name: str) -> str:
    """The statement that defines function `name`, as CREATE OR REPLACE (which keeps
    its owner and grants)."""
    (found,) = [
        s for s in statements if s.startswith("CREATE") and f"FUNCTION {name}(" in s.split("$$")[0]
    ]
    return found.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


# v17: the same checks, with less work an append (the texts above are the current ones;
# a site made before v17 gets them here): scelle_utc inlined, scelle_canonical reading
# an object's members once, scelle_drain appending a group in one savepoint (one a row
# only when one is refused), reading the queue from its oldest row and marking its rows
# through the primary key.
PG_V17 = [
    _definition(pg_ledger.PG_V6, "scelle_utc"),
    _definition(PG_V16, "scelle_canonical"),
    _definition(PG_V16, "scelle_drain"),
]

# v18: the queue's functions read it through its indexes, and compile no plan
# (QUEUE_PLANS).
PG_V18 = [
    _definition(PG_V16, "scelle_drain"),
    _definition(PG_V16, "scelle_await"),
    _definition(PG_V16, "scelle_withdraw"),
]

# v19: the entry check's short way to canonical bytes, set_config() as an expression
# rather than a query (four an append), and a queued append in one round trip
# (custody/ledger.py queued_append): the caller's second round trip (scelle_await after
# scelle_submit's commit) cost its process a third of its CPU an append, so a procedure
# commits between the two instead. It runs in the caller's name (a procedure that
# commits can neither be SECURITY DEFINER nor carry a SET clause), so it can do nothing
# the caller could not do with the functions it calls, named with their schema. An error
# or interruption while it waits (the client's cancel, a statement_timeout) takes the
# row back if no group has taken it, and says so durably (nothing written); otherwise it
# is raised and the row's outcome stands, for the ledger to say, as the caller of an
# interrupted commit learns it. So is one that lands during the COMMIT itself, before
# the wait: the row, committed, goes in with the next group (the attacker review timed
# statement_timeouts there: about one call in a hundred of those aimed at that moment).
PG_V19 = [
    _definition(PG_V16, "scelle_entry_shape"),
    _definition(PG_V16, "scelle_submit"),
    _definition(PG_V16, "scelle_await"),
    """CREATE PROCEDURE scelle_queued_append(heads bytea[], mids bytea[], lock_wait text,
      OUT queued bigint, OUT seq bigint, OUT at text, OUT refusal text, OUT refusal_code text)
    LANGUAGE plpgsql AS $$
    BEGIN
      SELECT s.id, s.seq, s.at, s.refusal, s.refusal_code
        INTO queued, seq, at, refusal, refusal_code
        FROM public.scelle_submit(heads, mids) s;
      IF queued IS NULL THEN  -- appended or refused at once: the CALL's commit, durable
        RETURN;
      END IF;
      COMMIT;  -- queued, for whoever holds the ledger's lock (nobody told anything yet)
      -- The wait runs at READ COMMITTED whatever the session's default (scelle_drain
      -- refuses any other); any error in it (not only an interruption) takes the row
      -- back if no group holds it, and is then said, never raised: a raised error would
      -- roll the withdrawal back and leave the committed row to the next group.
      SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
      BEGIN
        SELECT w.seq, w.at, w.refusal, w.refusal_code INTO seq, at, refusal, refusal_code
          FROM public.scelle_await(queued, lock_wait) w;
      EXCEPTION WHEN query_canceled OR others THEN
        IF NOT public.scelle_withdraw(queued) THEN
          RAISE;
        END IF;
        refusal := pg_catalog.concat(SQLERRM, ': nothing was written');  -- (no operator
        refusal_code := SQLSTATE;  -- a caller's search_path could shadow)
        PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);  -- said durably
      END;
    END $$""",
    "REVOKE ALL ON PROCEDURE scelle_queued_append(bytea[], bytea[], text) FROM PUBLIC",
]
