"""Errors raised by the projections.

ProjectionError
├── DecodeFailed      a receipt body cannot be read as its provider's format
├── PolicyInvalid     a policy file is missing, unreadable or has a bad value
├── PolicyMismatch    the stored projection was built under another policy
├── PolicyConflict    an instance was given a policy other than the ledger's active one
├── ReleaseRefused    a release would lift evidence the operator did not see or name
├── UnknownStream     a read or an action names a stream the policy does not define
└── ProjectionBehind  the projection trails the ledger by more than the service's bound
"""

from __future__ import annotations

from typing import Any


class ProjectionError(Exception):
    """Base class of every error the projections raise."""


class DecodeFailed(ProjectionError):
    """When a body is empty, not UTF-8, not JSON or form data, or holds no events."""


class PolicyInvalid(ProjectionError):
    """When a policy file cannot be read or a key or value in it is wrong."""


class UnknownStream(ProjectionError):
    """When a read or an operator action names a stream the policy does not define."""

    def __init__(self, stream: str, defined: list[str]) -> None:
        known = ", ".join(defined) if defined else "none: add [streams.NAME] tables to it"
        super().__init__(f"unknown stream {stream!r} (the policy's streams: {known})")
        self.stream = stream


class PolicyMismatch(ProjectionError):
    """When the stored projection was built under a policy other than the configured one."""

    def __init__(self, stored: str, configured: str) -> None:
        super().__init__(
            f"the projection was built under policy {stored[:12]}, but the configured policy "
            f"is {configured[:12]}: run `bounceledger rebuild` with the configured policy"
        )
        self.stored = stored
        self.configured = configured


class PolicyConflict(ProjectionError):
    """When an instance is started with a policy other than the ledger's active one, on a
    ledger whose policy history is already under way: a change goes through `rebuild`,
    with a note, so that every instance follows it — never through one instance's file."""


class ReleaseRefused(ProjectionError):
    """When a release was not recorded: newer evidence arrived since the one the operator
    saw, or every active cause is one the release does not name. `status` is the
    address's status as it stands (what changed)."""

    def __init__(self, message: str, status: Any) -> None:
        super().__init__(message)
        self.status = status


class ProjectionBehind(ProjectionError):
    """When the projection trails the ledger by more than the service's bound: an answer
    from it could be a stale "not suppressed"."""


class ErasureRefused(ProjectionError):
    """When an erasure cannot be done as asked: no erasure key is configured, the address
    is not one, or the ledger cannot make it (nothing is written then)."""
