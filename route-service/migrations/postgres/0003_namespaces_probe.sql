-- A (registry, namespace) belongs to one party: grants follow it (issue 19). A database that
-- already holds two active parties on one pair stops here; remove one of them first.
CREATE UNIQUE INDEX stations_registry_namespace ON stations (registry, namespace) WHERE removed = 0;
CREATE UNIQUE INDEX creators_registry_namespace ON creators (registry, namespace);

-- `/readyz` writes this row: a database that answers reads but cannot be written (a full
-- disk, a read-only mount, a lost primary) is not ready.
CREATE TABLE probe (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
INSERT INTO probe (id, at) VALUES (1, 0);
