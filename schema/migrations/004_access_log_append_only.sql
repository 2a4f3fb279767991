-- The data-access record is append-only: neither dashboard role may INSERT, UPDATE or DELETE it
-- directly. Records are written through dashboard.record_access() (which checks every field and
-- takes the time from the server, so a record cannot be backdated or forged by a direct INSERT)
-- and only dashboard.purge_access_log() deletes, and only records past the 90-day retention.
-- (There is no migration 002; this one is numbered after 003.)

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON dashboard.data_access_log
    FROM PUBLIC, dashboard_reader, dashboard_admin;
REVOKE ALL ON SEQUENCE dashboard.data_access_log_id_seq FROM PUBLIC, dashboard_reader, dashboard_admin;

-- The actor is an email address or a service name ('cron'); services/access_log.py checks the
-- same first and gives the clearer message.
CREATE OR REPLACE FUNCTION dashboard.record_access(
    p_actor TEXT, p_actor_role TEXT, p_tenant_id VARCHAR, p_purpose TEXT, p_query_kind TEXT,
    p_query_params JSONB, p_row_count INTEGER, p_sensitive BOOLEAN
) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dashboard, pg_temp AS $$
DECLARE
    new_id BIGINT;
BEGIN
    IF p_actor IS NULL OR length(p_actor) > 254
       OR NOT (p_actor ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$'
               OR p_actor IN ('cron')) THEN
        RAISE EXCEPTION 'access record refused: actor must be an email address or a known service'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_actor_role IS NULL OR p_actor_role NOT IN ('admin', 'support', 'client', 'service') THEN
        RAISE EXCEPTION 'access record refused: unknown actor role' USING ERRCODE = 'check_violation';
    END IF;
    IF p_tenant_id IS NULL OR NOT (p_tenant_id = '*' OR p_tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$') THEN
        RAISE EXCEPTION 'access record refused: invalid tenant id' USING ERRCODE = 'check_violation';
    END IF;
    IF p_purpose IS NULL OR btrim(p_purpose) = '' OR length(p_purpose) > 500
       OR p_purpose ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'access record refused: purpose must be 1-500 characters without control characters'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_query_kind IS NULL OR p_query_kind !~ '^[a-z][a-z0-9_]{0,63}$' THEN
        RAISE EXCEPTION 'access record refused: invalid query kind' USING ERRCODE = 'check_violation';
    END IF;
    IF p_query_params IS NULL OR jsonb_typeof(p_query_params) <> 'object'
       OR length(p_query_params::text) > 10000 THEN
        RAISE EXCEPTION 'access record refused: parameters must be a JSON object up to 10000 characters'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_row_count < 0 THEN
        RAISE EXCEPTION 'access record refused: negative row count' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO dashboard.data_access_log (actor, actor_role, tenant_id, purpose, query_kind,
                                           query_params, row_count, sensitive_revealed)
    VALUES (p_actor, p_actor_role, p_tenant_id, p_purpose, p_query_kind, p_query_params,
            p_row_count, coalesce(p_sensitive, false))
    RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;
REVOKE ALL ON FUNCTION dashboard.record_access(TEXT, TEXT, VARCHAR, TEXT, TEXT, JSONB, INTEGER,
    BOOLEAN) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.record_access(TEXT, TEXT, VARCHAR, TEXT, TEXT, JSONB, INTEGER,
    BOOLEAN) TO dashboard_reader, dashboard_admin;

-- The documented purge (the procedures: 90 days' retention), in batches; the floor is here,
-- in the database, so no caller can delete recent records.
CREATE OR REPLACE FUNCTION dashboard.purge_access_log(p_older_than_days INTEGER, p_batch INTEGER)
RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dashboard, pg_temp AS $$
DECLARE
    deleted INTEGER;
BEGIN
    IF p_older_than_days IS NULL OR p_older_than_days < 90 THEN
        RAISE EXCEPTION 'access records are kept at least 90 days' USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM dashboard.data_access_log
     WHERE id IN (SELECT id FROM dashboard.data_access_log
                   WHERE accessed_at < now() - make_interval(days => p_older_than_days)
                   ORDER BY id LIMIT least(greatest(coalesce(p_batch, 1), 1), 10000));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;
REVOKE ALL ON FUNCTION dashboard.purge_access_log(INTEGER, INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard.purge_access_log(INTEGER, INTEGER) TO dashboard_admin;
