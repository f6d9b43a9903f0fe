"""The ledger: receipts kept verbatim in an append-only, hash-chained log."""

from ledger.errors import AppendRejected, ChainBroken, LedgerError, StoreUnavailable
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sqlite import SQLiteStore
from ledger.store import Store

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
]
