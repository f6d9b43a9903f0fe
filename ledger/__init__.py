"""The ledger: receipts kept verbatim in an append-only, hash-chained log.

The interface (ledger/store.py) and everything above the backends import no database
driver; a backend is chosen by its address (ledger/backends.py) and imported then.
"""

from ledger.backends import as_target, is_database_url, open_store
from ledger.body_store import BodyStats
from ledger.errors import (
    AppendRejected,
    BodyMissing,
    ChainBroken,
    LedgerError,
    StoreUnavailable,
    ValueRefused,
)
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.store import Store
from ledger.transfer import Exported, Migration, export_ledger, import_receipts, migrate

__all__ = [
    "AppendRejected",
    "AppendResult",
    "BodyMissing",
    "BodyStats",
    "ChainBroken",
    "Exported",
    "LedgerError",
    "Migration",
    "NewReceipt",
    "Receipt",
    "Store",
    "StoreUnavailable",
    "ValueRefused",
    "as_target",
    "export_ledger",
    "import_receipts",
    "is_database_url",
    "migrate",
    "open_store",
]
