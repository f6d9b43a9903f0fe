"""Console ledger page: verify the chain, the newest receipts (by provider), the
quarantine with a replay button per delivery, the log of operator actions, and the change
feed's endpoints with how their deliveries stand (api/console/endpoint_actions.py acts on
them).

The last verification is kept per instance (in `app.state`), with when it ran: it is a
fact about the ledger at that moment, shown until the next one.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from api.audit import MAX_SOURCE, SOURCE_PATTERN
from api.console.render import back, page
from api.output import bodies_text
from api.push import endpoints
from api.runtime import Runtime
from api.schemas import MAX_SEQ
from projections import operator, policy_history
from projections.newest import newest_operator_actions, newest_receipts
from projections.providers import PROVIDERS
from projections.quarantine_replay import listing, replay_kept
from projections.recipients import format_time

PAGE = 50  # receipts, and operator actions, on the page
QUARANTINE_SHOWN = 100  # pending deliveries listed (the JSON API pages through them all)
SOURCES = (*sorted(PROVIDERS), operator.SOURCE, policy_history.SOURCE)
_LAST_VERIFICATION = "console_last_verification"  # key in app.state


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """A chain check as the page shows it: what was checked, and the head it verified
    (the last receipt that matched; None on an empty ledger)."""

    intact: bool
    receipts: int
    first_broken: int | None
    head_seq: int | None
    head_chain_hash: str | None
    at: str  # when it ran (ISO-8601 UTC)
    seconds: float  # how long it took
    bodies: str  # what body storage holds (api.output.bodies_text)


@get("/ledger", name="console-ledger")
async def ledger_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    source: Annotated[
        str | None, QueryParameter(max_length=MAX_SOURCE, pattern=SOURCE_PATTERN)
    ] = None,
    before: Annotated[int | None, QueryParameter(ge=1, le=MAX_SEQ)] = None,
) -> Template:
    chosen = source.strip() if source and source.strip() else None
    received = await newest_receipts(runtime.store, before=before, source=chosen, limit=PAGE)
    pending = await listing(runtime.store, limit=QUARANTINE_SHOWN)
    actions = await newest_operator_actions(runtime.store, limit=PAGE)
    pushed = await endpoints.listing(runtime.store)
    sources = SOURCES if chosen is None or chosen in SOURCES else (*SOURCES, chosen)
    return page(
        request,
        "ledger.html",
        "ledger",
        verification=request.app.state.get(_LAST_VERIFICATION),
        head=await runtime.store.last_seq(),
        receipts=received,
        source=chosen or "",
        sources=sources,
        before=before,
        older=received[-1].seq if len(received) == PAGE else None,
        pending=pending,
        pending_more=len(pending) == QUARANTINE_SHOWN,
        actions=actions,
        endpoints=pushed,
        pushing=runtime.settings.endpoint_key is not None,
        page_size=PAGE,
    )


@post("/ledger/verify", status_code=303)
async def verify(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Redirect:
    """Recompute the hash chain (as `bounceledger verify` does); keep the result."""
    store = runtime.store
    started = time.perf_counter()
    at = format_time(time.time_ns() // 1000 // 1_000_000 * 1_000_000) or ""
    count, broken = await store.verify()
    head = await store.get(count) if count else None  # seqs are dense: the last verified
    result = Verification(
        intact=broken is None,
        receipts=count,
        first_broken=broken,
        head_seq=head.seq if head is not None else None,
        head_chain_hash=head.chain_hash.hex() if head is not None else None,
        at=at,
        seconds=round(time.perf_counter() - started, 3),
        bodies=bodies_text(await store.body_stats()),
    )
    request.app.state[_LAST_VERIFICATION] = result
    if result.intact:
        notice = f"chain intact: {count} receipt{'' if count == 1 else 's'} checked"
    else:
        notice = f"chain broken at receipt {broken} ({count} receipts before it verified)"
    return back(request, "/console/ledger", notice)


@post("/quarantine/{qid:int}/replay", status_code=303)
async def replay_quarantined(
    qid: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
) -> Redirect:
    """Append a quarantined delivery if today's decoder reads it; the outcome as a notice."""
    outcome = await replay_kept(runtime.store, qid)
    if outcome is None:
        notice = f"there is no quarantined delivery {qid}"
    elif outcome.already_replayed:
        notice = f"quarantined delivery {qid} was already replayed, as receipt {outcome.seq}"
    elif outcome.error is not None:
        notice = f"quarantined delivery {qid} not replayed: {outcome.error}"
    elif outcome.duplicate:
        notice = f"quarantined delivery {qid} was already in the ledger, as receipt {outcome.seq}"
    else:
        notice = f"quarantined delivery {qid} replayed: now receipt {outcome.seq}"
        if outcome.seq is not None:
            await runtime.projector.wait_until(outcome.seq, timeout=2.0)
    return back(request, "/console/ledger", notice)


HANDLERS = [ledger_page, verify, replay_quarantined]
