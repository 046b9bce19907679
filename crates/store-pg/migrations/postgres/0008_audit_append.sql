-- An append onto the end a server last saw, in one round trip: takes the
-- audit chain's lock (the same advisory lock as every other append), then
-- reads the end afresh (a function's statements each see what committed
-- before them) and inserts the records only if the chain still ends at
-- (end_seq, end_hash). False, and nothing written, otherwise: the caller
-- then appends the usual way (lock, read the end, link, insert). Its
-- names resolve in Mamori's schema only, and only its owner (the role the
-- servers connect as) may call it.
CREATE FUNCTION mamori_append_audit(
    lock_key   BIGINT,
    end_seq    BIGINT,
    end_hash   BYTEA,
    seqs       BIGINT[],
    ats        BIGINT[],
    actors     TEXT[],
    sources    TEXT[],
    actions    TEXT[],
    targets    TEXT[],
    outcomes   TEXT[],
    requests   TEXT[],
    details    TEXT[],
    prev_hashes BYTEA[],
    hashes     BYTEA[]
) RETURNS BOOLEAN
LANGUAGE plpgsql
AS $$
DECLARE
    last_seq  BIGINT;
    last_hash BYTEA;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT seq, hash INTO last_seq, last_hash
        FROM audit_log ORDER BY seq DESC LIMIT 1;
    IF last_seq IS DISTINCT FROM end_seq OR last_hash IS DISTINCT FROM end_hash THEN
        RETURN FALSE;
    END IF;
    INSERT INTO audit_log
        (seq, at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash)
    SELECT * FROM UNNEST(seqs, ats, actors, sources, actions, targets, outcomes, requests,
                         details, prev_hashes, hashes);
    RETURN TRUE;
END;
$$;
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION mamori_append_audit(BIGINT, BIGINT, BYTEA, BIGINT[], BIGINT[], '
        'TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BYTEA[], BYTEA[]) '
        'SET search_path = %I, pg_temp',
        current_schema());
END;
$$;
REVOKE EXECUTE ON FUNCTION mamori_append_audit(BIGINT, BIGINT, BYTEA, BIGINT[], BIGINT[],
    TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BYTEA[], BYTEA[]) FROM PUBLIC;
