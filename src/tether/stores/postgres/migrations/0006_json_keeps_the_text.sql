-- Documents in `json` columns, which keep the exact text written (key order, number spelling, the
-- NUL escape), instead of jsonb beside the side columns that undid what jsonb changes (0001's
-- json_exact / data_exact, 0004's json_order / data_order). Each value is converted to the text
-- those columns gave back: the exact text where there is one, else the jsonb value with its
-- objects' keys put back in the order 0004 kept (`pg_temp.written`, gone with this session).

-- The text of `value` with keys reordered as `orders` says: [[visit, [position in jsonb's key
-- order of each key, as written]], ...], objects numbered depth first in written order from 0.
CREATE FUNCTION pg_temp.written(value jsonb, orders json, INOUT visit integer, OUT doc text)
LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
    positions json;
    parts text[] := '{}';
    key text;
    item jsonb;
BEGIN
    IF jsonb_typeof(value) = 'object' THEN
        SELECT array_agg(k ORDER BY n) INTO keys FROM jsonb_object_keys(value) WITH ORDINALITY AS t (k, n);
        SELECT o -> 1 INTO positions FROM json_array_elements(orders) AS o WHERE (o ->> 0)::integer = visit;
        visit := visit + 1;
        IF positions IS NOT NULL THEN
            SELECT array_agg(keys[p::integer + 1] ORDER BY n) INTO keys
            FROM json_array_elements_text(positions) WITH ORDINALITY AS t (p, n);
        END IF;
        FOREACH key IN ARRAY COALESCE(keys, '{}') LOOP
            SELECT w.visit, w.doc INTO visit, doc FROM pg_temp.written(value -> key, orders, visit) AS w;
            parts := parts || (to_json(key)::text || ':' || doc);
        END LOOP;
        doc := '{' || array_to_string(parts, ',') || '}';
    ELSIF jsonb_typeof(value) = 'array' THEN
        FOR item IN SELECT e FROM jsonb_array_elements(value) WITH ORDINALITY AS t (e, n) ORDER BY n LOOP
            SELECT w.visit, w.doc INTO visit, doc FROM pg_temp.written(item, orders, visit) AS w;
            parts := parts || doc;
        END LOOP;
        doc := '[' || array_to_string(parts, ',') || ']';
    ELSE
        doc := value::text;
    END IF;
END
$$;

-- The text of member `name` of the JSON object text `obj`, as written. PostgreSQL's json
-- functions cannot read a text holding the NUL escape (json_exact's reason to exist), so it is cut
-- out by a scan: a member ends at a comma or the closing brace at depth 1, outside strings.
CREATE FUNCTION pg_temp.member(obj json, name text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    chars text[] := string_to_array(obj::text, NULL);
    c text;
    depth integer := 0;
    in_string boolean := false;
    string_start integer;
    key text;
    value_start integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(chars, 1), 0) LOOP
        c := chars[i];
        IF in_string THEN
            IF c = '\' THEN
                chars[i + 1] := '';  -- the escaped character cannot end the string
            ELSIF c = '"' THEN
                in_string := false;
                IF depth = 1 AND value_start IS NULL THEN
                    key := array_to_string(chars[string_start:i], '');
                END IF;
            END IF;
        ELSIF c = '"' THEN
            in_string := true;
            string_start := i;
        ELSIF c = ':' AND depth = 1 THEN
            value_start := i + 1;
        ELSIF c IN ('{', '[') THEN
            depth := depth + 1;
        ELSIF depth = 1 AND c IN (',', '}') THEN
            IF key::json #>> '{}' = name THEN
                RETURN btrim(substr(obj::text, value_start, i - value_start), E' \t\n\r')::json;
            END IF;
            key := NULL;
            value_start := NULL;
            IF c = '}' THEN
                depth := 0;
            END IF;
        ELSIF c IN ('}', ']') THEN
            depth := depth - 1;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

ALTER TABLE checkpoints ALTER COLUMN data TYPE json USING COALESCE(
    data_exact,
    CASE WHEN data_order IS NULL THEN data::json ELSE (pg_temp.written(data, data_order, 0)).doc::json END);
ALTER TABLE checkpoints DROP COLUMN data_exact, DROP COLUMN data_order;

ALTER TABLE sessions
    ALTER COLUMN context TYPE json USING COALESCE(
        pg_temp.member(json_exact, 'context'),
        CASE WHEN json_order -> 'context' IS NULL THEN context::json
             ELSE (pg_temp.written(context, json_order -> 'context', 0)).doc::json END),
    ALTER COLUMN metadata TYPE json USING COALESCE(
        pg_temp.member(json_exact, 'metadata'),
        CASE WHEN json_order -> 'metadata' IS NULL THEN metadata::json
             ELSE (pg_temp.written(metadata, json_order -> 'metadata', 0)).doc::json END),
    ALTER COLUMN failure_details TYPE json USING COALESCE(
        pg_temp.member(json_exact, 'failure_details'),
        CASE WHEN json_order -> 'failure_details' IS NULL THEN failure_details::json
             ELSE (pg_temp.written(failure_details, json_order -> 'failure_details', 0)).doc::json END);
ALTER TABLE sessions DROP COLUMN json_exact, DROP COLUMN json_order;

DROP FUNCTION pg_temp.written(jsonb, json, integer);
DROP FUNCTION pg_temp.member(json, text);
