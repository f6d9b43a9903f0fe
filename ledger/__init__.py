"""The ledger: receipts kept verbatim in an append-only, hash-chained log."""

from ledger.errors import AppendRejected, ChainBroken, LedgerError, StoreUnavailable
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sqlite import SQLiteStore
from ledger.store import Store
from ledger.transfer import export_receipts, import_receipts

__all__ = [
    "AppendRejected",
    "AppendResult",
    "ChainBroken",
    "LedgerError",
    "NewReceipt",
    "Receipt",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "export_receipts",
    "import_receipts",
]
