"""DDL for the receipts table (append-only, enforced by the database itself), the door
identities kept beside it, and the quarantine."""

PRAGMAS = (
    # First: every statement after it, the switch to WAL included, waits for a lock held
    # by another connection (another instance opening the same file) instead of failing.
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    # FULL: the WAL is synced at every commit, so an acknowledged receipt survives an
    # OS crash or power loss, not only a process crash. Group commit pays for it.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # A rebuild's copy of the fact index is one large transaction: the WAL grows by the
    # table's size. Once a checkpoint has reset it, it is truncated back to 64 MiB
    # rather than keeping that size on disk until the last connection closes.
    "PRAGMA journal_size_limit=67108864",
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
-- Door identities (SNS MessageId, Mailgun token) -> the receipt that first carried one,
-- and its body's digest: the same identity with other bytes is a replay and refused.
-- Written in the receipt's own transaction (ledger/writer.py), outside the chain.
CREATE TABLE IF NOT EXISTS door_ids (
    source      TEXT    NOT NULL,
    identity    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    body_sha256 BLOB    NOT NULL,
    PRIMARY KEY (identity, source)
) WITHOUT ROWID;
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
CREATE INDEX IF NOT EXISTS quarantine_by_source ON quarantine (source, replayed_seq);
"""
