"""The ledger: receipts kept verbatim in an append-only, hash-chained log."""

from ledger.errors import (
    AppendRejected,
    ChainBroken,
    LedgerError,
    StoreUnavailable,
    ValueRefused,
)
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sqlite import SQLiteStore
from ledger.store import Store, as_target, is_url, open_store
from ledger.transfer import Migration, export_receipts, import_receipts, migrate

__all__ = [
    "AppendRejected",
    "AppendResult",
    "ChainBroken",
    "LedgerError",
    "Migration",
    "NewReceipt",
    "Receipt",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "ValueRefused",
    "as_target",
    "export_receipts",
    "import_receipts",
    "is_url",
    "migrate",
    "open_store",
]
