-- Deliveries are looked up by id only: keyed by it directly (WITHOUT ROWID), each insert
-- writes one B-tree instead of a table and its primary-key index. Recording a delivery is on
-- the path of every webhook's answer.
CREATE TABLE deliveries_by_id (
    id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    received_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO deliveries_by_id (id, event, received_at)
    SELECT id, event, received_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_by_id RENAME TO deliveries;
