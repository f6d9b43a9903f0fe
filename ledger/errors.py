"""Errors raised by the ledger.

LedgerError
├── StoreUnavailable   the database could not be opened, written or committed
├── ValueRefused       the database refused a value it cannot store (the data's fault)
├── AppendRejected     a receipt was refused before it was written
├── ChainBroken        a stored record does not match its chain hash
└── BodyMissing        a stored body cannot be read back (missing, or its dictionary is)
"""


class LedgerError(Exception):
    """Base class of every error the ledger raises."""


class StoreUnavailable(LedgerError):
    """When the database cannot be opened, written or committed (disk full, I/O error, locked)."""


class ValueRefused(LedgerError):
    """When the database refuses a value it cannot store or compare (a NUL in text, a key
    too long for an index): the statement's data is at fault, not the database, so
    retrying it can never succeed — the projector sets such a receipt aside."""


class AppendRejected(LedgerError):
    """When a receipt is refused before it is written (for example an empty source)."""


class ChainBroken(LedgerError):
    """When a stored record's chain hash does not match its contents."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"chain broken at receipt {seq}")
        self.seq = seq


class BodyMissing(LedgerError):
    """When a receipt's body cannot be read back: no body is stored for it, its
    dictionary is not in the database, or its bytes do not decompress."""
