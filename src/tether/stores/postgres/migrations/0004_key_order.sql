-- jsonb sorts every object's keys. The order they were written in is kept beside each JSON value,
-- for the objects whose order differs (stores/postgres/jsonb.py), so reads give it back: for a
-- checkpoint in `data_order`, for a session's JSON columns in `json_order`, by column name.
-- Rows written before have none, and read in jsonb's order as they did.
ALTER TABLE checkpoints ADD COLUMN data_order json;
ALTER TABLE sessions ADD COLUMN json_order json;
