"""PostgreSQL: the database itself checks every ledger append and checkpoint.

An agent's session may read the ledger tables but not write them: it appends through
`scelle_append` and records checkpoints through `scelle_add_checkpoint`, SECURITY DEFINER
functions owned by the tables' owner. `scelle_append` checks that each entry is canonical
RFC 8785 JSON, has the next seq, names the session's own role, carries the server's time
(never before the previous entry, never ahead of the clock), records an action the
agent's role may record (`ledger_policy`, written by the owner at each upgrade) with the
four eyes the workflow asks; then it computes the entry's tree nodes and audit index row
from its bytes. `scelle_add_checkpoint` stores a checkpoint only if its origin, size,
root and key id are the log's own. So no agent can insert a row that stops the log for
the others, nor write in another's name, role or time. The Python side (custody/ledger.py)
builds the bytes with the time the server gives (`scelle_ledger_head`), and
tests/test_pg_guard.py attacks each rule as a designated agent and as an intruder.
"""

from __future__ import annotations

from collections.abc import Sequence

# Locks no one but scelle's own functions can take: a row of an owner-only table, locked
# FOR UPDATE (which needs rights the agents do not have) by a SECURITY DEFINER function.
# An advisory lock, open to PUBLIC and to a key anyone can compute, let any member of the
# application role hold the purge or an extraction for as long as it liked; now only an
# active designated agent can take those. The ledger's own lock stays every member's to
# wait for (so that an undesignated login's refusal is recorded): a session that sits in
# a transaction holding it makes the others' writes fail at lock_timeout (60 s), one line
# each, and pg_stat_activity names it.
PG_LOCKS = [
    "CREATE TABLE scelle_lock (name TEXT PRIMARY KEY)",
    "REVOKE ALL ON scelle_lock FROM PUBLIC",
    "INSERT INTO scelle_lock (name) VALUES ('ledger'), ('purge')",
    """CREATE FUNCTION scelle_take(lock_name text) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM 1 FROM scelle_lock WHERE name = lock_name FOR UPDATE;
    END $$""",
    # Ready a lock row (committed on its own, before it is locked: another session's
    # INSERT of the same name would otherwise wait for the locking transaction to end).
    """CREATE FUNCTION scelle_lock_ready(lock_name text) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_lock_allowed(lock_name);
      INSERT INTO scelle_lock (name) VALUES (lock_name) ON CONFLICT DO NOTHING;
    END $$""",
    # The ledger's lock is every member's to wait for (an undesignated login's refusal is
    # recorded too); the long ones (a purge, an extraction) only an active agent's.
    """CREATE FUNCTION scelle_lock_allowed(lock_name text) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      IF lock_name <> 'ledger'
         AND session_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class
                              WHERE oid = 'scelle_lock'::regclass)
         AND NOT EXISTS (SELECT 1 FROM agent g WHERE g.login = session_user AND g.active) THEN
        RAISE EXCEPTION '% is not an active designated agent', session_user;
      END IF;
    END $$""",
    """CREATE FUNCTION scelle_lock(lock_name text, wait boolean) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_lock_allowed(lock_name);
      IF wait THEN
        PERFORM 1 FROM scelle_lock WHERE name = lock_name FOR UPDATE;
      ELSE
        PERFORM 1 FROM scelle_lock WHERE name = lock_name FOR UPDATE NOWAIT;
      END IF;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'no lock named % (scelle_lock_ready first)', lock_name;
      END IF;
      RETURN true;
    EXCEPTION WHEN lock_not_available THEN
      RETURN false;
    END $$""",
]

PG_V6 = [
    # STABLE as to_char is (v17): a SQL function declared IMMUTABLE around it is never
    # inlined where it is called, and was planned again at each call (three an append).
    """CREATE FUNCTION scelle_utc(ts timestamptz) RETURNS text LANGUAGE sql STABLE AS
    $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$""",
    # RFC 8785 orders object keys by UTF-16 code units.
    """CREATE FUNCTION scelle_utf16(s text) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT AS $$
    DECLARE r bytea := ''::bytea; c int;
    BEGIN
      FOR i IN 1 .. length(s) LOOP
        c := ascii(substr(s, i, 1));
        IF c >= 65536 THEN
          c := c - 65536;
          r := r || int4send(((55296 + (c >> 10)) << 16) | (56320 + (c & 1023)));
        ELSE
          r := r || substring(int4send(c) FROM 3 FOR 2);
        END IF;
      END LOOP;
      RETURN r;
    END $$""",
    # RFC 8785 canonical JSON of a value whose numbers are integers (scelle refuses floats).
    # jsonb prints strings, true, false and null as RFC 8785 does (the same minimal
    # escapes, lower-case \\u00xx); objects sort their keys by UTF-16 code units, which is
    # the order of their UTF-8 bytes unless a key holds a character from U+E000 up.
    r"""CREATE FUNCTION scelle_canonical(j jsonb) RETURNS text LANGUAGE plpgsql
    IMMUTABLE STRICT AS $$
    DECLARE t text := jsonb_typeof(j); n text;
    BEGIN
      IF t = 'object' THEN
        IF EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '[-􏿿]') THEN
          RETURN '{' || COALESCE((
            SELECT string_agg(to_json(key)::text || ':' || scelle_canonical(value), ','
                              ORDER BY scelle_utf16(key))
            FROM jsonb_each(j)), '') || '}';
        END IF;
        RETURN '{' || COALESCE((
          SELECT string_agg(to_json(key)::text || ':' ||
                            CASE WHEN jsonb_typeof(value) IN ('object', 'array', 'number')
                                 THEN scelle_canonical(value) ELSE value::text END, ','
                            ORDER BY convert_to(key, 'UTF8'))
          FROM jsonb_each(j)), '') || '}';
      ELSIF t = 'array' THEN
        RETURN '[' || COALESCE((
          SELECT string_agg(CASE WHEN jsonb_typeof(x) IN ('object', 'array', 'number')
                                 THEN scelle_canonical(x) ELSE x::text END, ',' ORDER BY i)
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
    """CREATE FUNCTION scelle_root(size bigint) RETURNS bytea LANGUAGE plpgsql STABLE
    SET search_path = public, pg_temp AS $$
    DECLARE lo bigint := 0; s bigint; k bigint; lvl int; hs bytea[] := '{}'; h bytea; acc bytea;
    BEGIN
      IF size = 0 THEN RETURN sha256(''::bytea); END IF;
      WHILE size - lo > 0 LOOP
        s := size - lo;
        IF s & (s - 1) = 0 THEN
          k := s;
        ELSE
          k := 1;
          WHILE k * 2 < s LOOP k := k * 2; END LOOP;
        END IF;
        lvl := 0;
        WHILE (1::bigint << lvl) < k LOOP lvl := lvl + 1; END LOOP;
        h := (SELECT x.hash FROM ledger_node x WHERE x.level = lvl AND x.idx = lo >> lvl);
        IF h IS NULL THEN
          RAISE EXCEPTION 'the ledger tree is damaged: node (%, %) is missing', lvl, lo >> lvl;
        END IF;
        hs := hs || h;
        lo := lo + k;
      END LOOP;
      acc := hs[array_length(hs, 1)];
      FOR i IN REVERSE array_length(hs, 1) - 1 .. 1 LOOP
        acc := sha256('\\x01'::bytea || hs[i] || acc);
      END LOOP;
      RETURN acc;
    END $$""",
    # The next seq and the time to stamp, in order: the server's clock, never earlier than
    # the last entry's. Takes the writer lock (Database.write() already holds it).
    """CREATE FUNCTION scelle_ledger_head(OUT size bigint, OUT at text) LANGUAGE plpgsql
    SET search_path = public, pg_temp AS $$
    BEGIN
      PERFORM scelle_take('ledger');
      size := (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry);
      at := (SELECT a.time FROM ledger_audit a WHERE a.seq = size - 1);
      at := GREATEST(scelle_utc(clock_timestamp()) COLLATE "C", COALESCE(at, '') COLLATE "C");
    END $$""",
    # The only way an agent appends: each entry is checked (canonical bytes, next seq, the
    # session's own name, the server's time in order, an action the agent's role may
    # record, four eyes where the workflow asks them), then its tree nodes and audit
    # index row are computed here, from its bytes.
    """CREATE FUNCTION scelle_append(bodies bytea[]) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
      is_owner boolean := session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class
                                          WHERE oid = 'ledger_entry'::regclass);
      agent_role text; agent_active boolean;
      n bigint; last_time text; now_text text; earliest text;
      b bytea; e jsonb; t text; act text; allowed text; who text;
      subj jsonb; dat jsonb; req text; proc text; unit text; rproc text; runit text;
      leaf bytea; h bytea; sib bytea; lvl int; ix bigint;
    BEGIN
      PERFORM scelle_take('ledger');
      n := (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry);
      last_time := (SELECT a.time FROM ledger_audit a WHERE a.seq = n - 1);
      now_text := scelle_utc(clock_timestamp());
      earliest := scelle_utc(clock_timestamp() - interval '2 minutes');
      SELECT g.role, g.active INTO agent_role, agent_active FROM agent g
        WHERE g.login = session_user;
      FOREACH b IN ARRAY bodies LOOP
        BEGIN
          e := convert_from(b, 'UTF8')::jsonb;
        EXCEPTION WHEN OTHERS THEN
          RAISE EXCEPTION 'ledger entry %: not JSON text', n;
        END;
        IF jsonb_typeof(e) <> 'object' OR convert_to(scelle_canonical(e), 'UTF8') <> b THEN
          RAISE EXCEPTION 'ledger entry %: not canonical JSON (RFC 8785)', n;
        END IF;
        IF (SELECT string_agg(k, ',' ORDER BY k COLLATE "C") FROM jsonb_object_keys(e) k)
           <> 'action,actor,data,procedure,reason,seq,subject,time,v'
           OR e -> 'v' <> '1'::jsonb OR e -> 'seq' <> to_jsonb(n)
           OR jsonb_typeof(e -> 'actor') <> 'string' OR jsonb_typeof(e -> 'time') <> 'string'
           OR jsonb_typeof(e -> 'action') <> 'string' OR jsonb_typeof(e -> 'reason') <> 'string'
           OR jsonb_typeof(e -> 'data') <> 'object'
           OR jsonb_typeof(e -> 'subject') NOT IN ('string', 'object')
           OR jsonb_typeof(e -> 'procedure') NOT IN ('string', 'null') THEN
          RAISE EXCEPTION 'ledger entry %: not a scelle ledger entry with the next seq', n;
        END IF;
        IF btrim(e ->> 'reason') = '' OR (e ->> 'procedure') ~ '^\\s*$'
           OR (e ->> 'action') !~ '^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)*$' THEN
          RAISE EXCEPTION 'ledger entry %: bad action, empty reason or empty procedure', n;
        END IF;
        subj := e -> 'subject';
        dat := e -> 'data';
        IF jsonb_typeof(subj -> 'cameras') NOT IN ('array', 'null')
           OR jsonb_typeof(dat -> 'windows') NOT IN ('array', 'null') THEN
          RAISE EXCEPTION 'ledger entry %: cameras and windows must be lists', n;
        END IF;
        who := e ->> 'actor';
        IF NOT is_owner AND who <> session_user THEN
          RAISE EXCEPTION 'a ledger entry must name the session''s own role (%)', session_user;
        END IF;
        t := e ->> 'time';
        IF t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$'
           OR t COLLATE "C" < COALESCE(last_time, '') COLLATE "C"
           OR t COLLATE "C" > now_text COLLATE "C" OR t COLLATE "C" < earliest COLLATE "C" THEN
          RAISE EXCEPTION 'ledger entry %: time % is not the server''s time (after %, by %)',
            n, t, COALESCE(last_time, 'the start'), now_text;
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
          RAISE EXCEPTION 'ledger entry %: a % entry without the fields scelle reads', n, act;
        END IF;
        IF NOT is_owner THEN
          IF act = 'access.refused' THEN
            IF jsonb_typeof(subj) <> 'object' OR subj ->> 'agent' IS DISTINCT FROM session_user THEN
              RAISE EXCEPTION 'a refusal names the refused login itself';
            END IF;
          ELSE
            IF agent_role IS NULL OR NOT agent_active THEN
              RAISE EXCEPTION '% is not an active designated agent', session_user;
            END IF;
            allowed := (SELECT p.roles FROM ledger_policy p WHERE p.action = act);
            IF allowed IS NULL OR NOT agent_role = ANY (string_to_array(allowed, ',')) THEN
              RAISE EXCEPTION '% (%) may not record %', session_user, agent_role, act;
            END IF;
          END IF;
          IF act IN ('requisition.approve', 'requisition.deny') THEN
            IF NOT EXISTS (SELECT 1 FROM ledger_audit a WHERE a.action = 'requisition.register'
                           AND a.requisition = subj ->> 'requisition')
               OR EXISTS (SELECT 1 FROM ledger_audit a WHERE a.action = 'requisition.register'
                          AND a.requisition = subj ->> 'requisition'
                          AND lower(btrim(a.actor)) = lower(btrim(session_user))) THEN
              RAISE EXCEPTION
                '% registered requisition % (or it is unknown): another supervisor decides',
                session_user, subj ->> 'requisition';
            END IF;
          ELSIF act = 'hold.release' THEN
            IF NOT EXISTS (SELECT 1 FROM scelle_hold_placers(subj -> 'hold'))
               OR EXISTS (SELECT 1 FROM scelle_hold_placers(subj -> 'hold') p
                          WHERE lower(btrim(p.placer)) = lower(btrim(session_user))) THEN
              RAISE EXCEPTION '% placed hold % (or it is unknown): another supervisor releases it',
                session_user, subj -> 'hold';
            END IF;
          END IF;
        END IF;
        leaf := sha256('\\x00'::bytea || b);
        INSERT INTO ledger_entry (seq, body) VALUES (n, b);
        INSERT INTO ledger_node (level, idx, hash) VALUES (0, n, leaf);
        h := leaf; lvl := 0; ix := n;
        WHILE ix % 2 = 1 LOOP
          sib := (SELECT x.hash FROM ledger_node x WHERE x.level = lvl AND x.idx = ix - 1);
          IF sib IS NULL THEN
            RAISE EXCEPTION 'the ledger tree is damaged: node (%, %) is missing', lvl, ix - 1;
          END IF;
          h := sha256('\\x01'::bytea || sib || h);
          lvl := lvl + 1;
          ix := ix / 2;
          INSERT INTO ledger_node (level, idx, hash) VALUES (lvl, ix, h);
        END LOOP;
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
        INSERT INTO ledger_audit (seq, time, actor, action, requisition, procedure, unit)
          VALUES (n, t, who, act, req, proc, unit);
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
    END $$""",
    # A UTC instant as scelle writes it (years 1900-9998, as scelle reads them).
    r"""CREATE FUNCTION scelle_is_utc(t text) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
    BEGIN
      IF t IS NULL OR t !~ ('^(19|[2-9][0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}'
                            || 'T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$')
         OR left(t, 4) = '9999' THEN
        RETURN false;
      END IF;
      PERFORM (left(t, -1) || '+00')::timestamptz;
      RETURN true;
    EXCEPTION WHEN OTHERS THEN
      RETURN false;
    END $$""",
    # Who placed a hold: its hold.place entries and the upgrade's restatement.
    """CREATE FUNCTION scelle_hold_placers(hold jsonb) RETURNS TABLE(placer text)
    LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
      SELECT a.actor FROM ledger_audit a JOIN ledger_entry x ON x.seq = a.seq
        WHERE a.action = 'hold.place'
          AND convert_from(x.body, 'UTF8')::jsonb -> 'subject' -> 'hold' = hold
      UNION ALL
      SELECT item ->> 'placed_by' FROM ledger_audit a JOIN ledger_entry x ON x.seq = a.seq,
        jsonb_array_elements(convert_from(x.body, 'UTF8')::jsonb -> 'data' -> 'holds') item
        WHERE a.action = 'hold.restate' AND item -> 'hold' = hold
    $$""",
    # The only way an agent records a checkpoint: its size, root, origin and key id are
    # the log's own (computed here); only the Ed25519 signature cannot be checked by the
    # server, and every reader checks it.
    """CREATE FUNCTION scelle_add_checkpoint(note text, station text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
      body text; rest text; lines text[]; genesis jsonb; size bigint; n bigint;
      root bytea; keyname text; keyid bytea; sig text; blob bytea; signed boolean := false;
    BEGIN
      PERFORM scelle_take('ledger');
      IF session_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class
                          WHERE oid = 'ledger_checkpoint'::regclass)
         AND NOT EXISTS (
           SELECT 1 FROM agent g JOIN ledger_policy p ON p.action = 'ledger.note'
           WHERE g.login = session_user AND g.active
             AND g.role = ANY (string_to_array(p.roles, ','))) THEN
        RAISE EXCEPTION '% may not record checkpoints', session_user;
      END IF;
      body := split_part(note, E'\\n\\n', 1);
      rest := substr(note, length(body) + 3);
      lines := string_to_array(body, E'\\n');
      IF array_length(lines, 1) <> 3 OR rest = '' OR right(note, 1) <> E'\\n'
         OR lines[2] !~ '^[1-9][0-9]{0,17}$' THEN
        RAISE EXCEPTION 'not a checkpoint of this log (origin, size and root lines)';
      END IF;
      genesis := convert_from((SELECT x.body FROM ledger_entry x WHERE x.seq = 0), 'UTF8')::jsonb;
      size := lines[2]::bigint;
      n := (SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry);
      IF lines[1] <> genesis -> 'data' ->> 'origin' OR size > n THEN
        RAISE EXCEPTION 'not a checkpoint of this log (origin %, size % of %)', lines[1], size, n;
      END IF;
      BEGIN
        root := decode(lines[3], 'base64');
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'the checkpoint''s root is not base64';
      END;
      IF root <> scelle_root(size) THEN
        RAISE EXCEPTION 'the checkpoint''s root is not the log''s root at size %', size;
      END IF;
      keyname := genesis -> 'data' ->> 'key_name';
      keyid := substring(sha256(convert_to(keyname, 'UTF8') || '\\x0a01'::bytea
                                || decode(genesis -> 'data' ->> 'public_key', 'base64'))
                         FROM 1 FOR 4);
      IF position(E'\\n' IN rtrim(rest, E'\\n')) > 0 THEN
        RAISE EXCEPTION 'a checkpoint carries the site key''s signature line alone';
      END IF;
      FOREACH sig IN ARRAY string_to_array(rtrim(rest, E'\\n'), E'\\n') LOOP
        IF left(sig, 2) <> '— ' THEN
          RAISE EXCEPTION 'not a signed note: bad signature line';
        END IF;
        IF split_part(substr(sig, 3), ' ', 1) = keyname THEN
          BEGIN
            blob := decode(split_part(substr(sig, 3), ' ', 2), 'base64');
          EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'not a signed note: signature is not base64';
          END;
          signed := signed OR (length(blob) = 68 AND substring(blob FROM 1 FOR 4) = keyid);
        END IF;
      END LOOP;
      IF NOT signed THEN
        RAISE EXCEPTION 'the checkpoint carries no signature line of the site key %', keyname;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM ledger_checkpoint c
                     WHERE c.note = scelle_add_checkpoint.note) THEN
        INSERT INTO ledger_checkpoint (tree_size, root, note, signed_at, signed_by, station)
          VALUES (size, root, note, scelle_utc(clock_timestamp()), session_user, station);
      END IF;
    END $$""",
]


def grant_statements(app_role: str, more: Sequence[str] = ()) -> list[str]:
    """Who may call the functions and procedures (custody's, and the workflow's `more`):
    the application role, and nobody else. (ROUTINE: a procedure is not a FUNCTION to
    GRANT.)"""
    names = [
        "scelle_lock(text, boolean)",
        "scelle_lock_ready(text)",
        "scelle_lock_allowed(text)",
        "scelle_ledger_head()",
        "scelle_append(bytea[])",
        "scelle_add_checkpoint(text, text)",
        "scelle_root(bigint)",
        "scelle_hold_placers(jsonb)",
        "scelle_is_utc(text)",
        *more,
    ]
    return [f"REVOKE ALL ON ROUTINE {n} FROM PUBLIC" for n in names] + [
        f"GRANT EXECUTE ON ROUTINE {n} TO {app_role}" for n in names
    ]
