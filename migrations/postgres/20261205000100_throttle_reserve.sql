-- A sign-in's throttle reservation (store::throttle::reserve) in one round trip instead of
-- four (BEGIN, the locks, the counts and inserts, COMMIT): on PostgreSQL every round trip
-- costs the database's CPU and a wake-up on both sides, on the cores that also hash the
-- passwords. Called as one statement, so the advisory locks are held until it commits.
--
-- Takes every key's transaction advisory lock (in the order of the locks' numbers, so two
-- callers cannot deadlock), then counts each key's events since its window start and, when
-- every check has room, records one event per key. Returns one row per check, in order:
-- its count, its limit, its oldest event in the window, and the new event's id (null when
-- any check is used up; then nothing was inserted).
--
-- The counts must be a statement of their own after the locks: under READ COMMITTED a
-- statement's snapshot is taken when it starts. A VOLATILE function (the default) takes a
-- new snapshot for each statement in it, so the counts see the events of every caller the
-- locks waited for.
CREATE FUNCTION latch_throttle_reserve(keys text[], maxes bigint[], sinces bigint[], now_at bigint)
RETURNS TABLE (n bigint, m bigint, oldest bigint, id bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(l.h) FROM
        (SELECT DISTINCT hashtextextended(k, 7450) AS h FROM unnest(keys) AS k ORDER BY h) AS l;
    RETURN QUERY
    WITH c AS (
        SELECT t.i, t.k, t.m,
               (SELECT COUNT(*) FROM throttle_events e WHERE e.key = t.k AND e.at >= t.s) AS n,
               (SELECT MIN(e.at) FROM throttle_events e WHERE e.key = t.k AND e.at >= t.s) AS oldest
        FROM unnest(keys, maxes, sinces) WITH ORDINALITY AS t(k, m, s, i)
    ), ins AS (
        INSERT INTO throttle_events (key, at)
        SELECT c.k, now_at FROM c WHERE NOT EXISTS (SELECT 1 FROM c c2 WHERE c2.n >= c2.m) ORDER BY c.i
        RETURNING throttle_events.id, throttle_events.key
    )
    SELECT c.n, c.m, c.oldest, ins.id FROM c LEFT JOIN ins ON ins.key = c.k ORDER BY c.i;
END
$$;
