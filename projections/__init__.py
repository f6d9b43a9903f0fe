"""What the ledger means: decoding, mapping, the policy, the pure fold and its views."""

from projections import policy_history
from projections.errors import (
    DecodeFailed,
    PolicyConflict,
    PolicyInvalid,
    PolicyMismatch,
    ProjectionError,
)
from projections.events import NormalizedEvent
from projections.fold import fold, replay
from projections.mapping import KNOWN_SOURCES, Mapper, read_policy
from projections.policy import DEFAULT_POLICY, Policy, load_policy, policy_hash
from projections.projector import Projector
from projections.rebuild import RebuildReport, rebuild
from projections.state import RecipientState

__all__ = [
    "DEFAULT_POLICY",
    "KNOWN_SOURCES",
    "DecodeFailed",
    "Mapper",
    "NormalizedEvent",
    "Policy",
    "PolicyConflict",
    "PolicyInvalid",
    "PolicyMismatch",
    "ProjectionError",
    "Projector",
    "RebuildReport",
    "RecipientState",
    "fold",
    "load_policy",
    "policy_hash",
    "policy_history",
    "read_policy",
    "rebuild",
    "replay",
]
