"""DDL for the receipts table: append-only, enforced by the database itself."""

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: the WAL is synced at every commit, so an acknowledged receipt survives an
    # OS crash or power loss, not only a process crash. Group commit pays for it.
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)

RECEIPTS = """
CREATE TABLE IF NOT EXISTS receipts (
    seq          INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    headers      TEXT    NOT NULL,
    peer         TEXT,
    body         BLOB    NOT NULL,
    body_sha256  BLOB    NOT NULL,
    chain_hash   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_by_digest ON receipts (body_sha256);
CREATE TRIGGER IF NOT EXISTS receipts_refuse_update BEFORE UPDATE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts are append-only: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS receipts_refuse_delete BEFORE DELETE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts are append-only: DELETE refused');
END;
"""

# Deliveries refused as undecodable after authentication (ledger/quarantine.py): kept
# aside, outside the chain, until replayed.
QUARANTINE = """
CREATE TABLE IF NOT EXISTS quarantine (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    headers      TEXT    NOT NULL,
    peer         TEXT,
    body         BLOB    NOT NULL,
    body_sha256  BLOB    NOT NULL,
    reason       TEXT    NOT NULL,
    seen         INTEGER NOT NULL DEFAULT 1,
    replayed_seq INTEGER
);
CREATE INDEX IF NOT EXISTS quarantine_by_digest ON quarantine (body_sha256);
"""
