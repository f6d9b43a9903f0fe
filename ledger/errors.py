"""Errors raised by the ledger.

LedgerError
├── StoreUnavailable   the database could not be opened, written or committed
├── AppendRejected     a receipt was refused before it was written
└── ChainBroken        a stored record does not match its chain hash
"""


class LedgerError(Exception):
    """Base class of every error the ledger raises."""


class StoreUnavailable(LedgerError):
    """When the database cannot be opened, written or committed (disk full, I/O error, locked)."""


class AppendRejected(LedgerError):
    """When a receipt is refused before it is written (for example an empty source)."""


class ChainBroken(LedgerError):
    """When a stored record's chain hash does not match its contents."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"chain broken at receipt {seq}")
        self.seq = seq
