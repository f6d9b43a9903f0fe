"""Personal data over HTTP: erase an address's data (the record keeps its "no"), list
erasures, apply the policy's retention (a dry run unless told otherwise).

Both need an API key, as every route but the webhooks' does (api/auth.py). Erasing needs
the erasure key as well (projections/erasure_keys.py): without one the service answers
409 and erases nothing.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, QueryParameter

from api.runtime import Runtime
from api.schemas import Problem
from projections.erasing import ErasureReport, erase
from projections.erasure_history import ErasureEntry, erasures
from projections.erasure_keys import NO_KEY, ErasureKeyMissing
from projections.retention import RetentionReport
from projections.retention import apply as retention


class ErasureRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Whom to erase, why, and the data-subject request it answers."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    request: Annotated[str, msgspec.Meta(max_length=200)] | None = None


@post(
    "/v1/erasures",
    status_code=201,
    summary="Erase an address's data; it stays suppressed under its keyed hash",
    description=(
        "Removes every body about the address alone, redacts the ones that name others too, "
        "deletes quarantined deliveries that mention it and forgets it in the projection; "
        "appends an erasure record (who, when, why, `request`, the keyed hash, the bodies "
        "changed). Lookups of the address keep answering suppressed. 409 without an erasure "
        "key configured (BOUNCELEDGER_ERASURE_KEY)."
    ),
    responses={
        409: ResponseSpec(
            data_container=Problem,
            description="nothing erased: no erasure key is configured, the address is not "
            "one, or the ledger has never been projected",
        )
    },
)
async def create_erasure(
    data: JSONBody[ErasureRequest],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
) -> ErasureReport:
    key = runtime.settings.erasure_key
    if key is None:
        raise ErasureKeyMissing(NO_KEY)
    report = await erase(
        runtime.store,
        key,
        data.email,
        actor=str(request.state.get("api_key_name", "api")),
        note=data.note,
        at=time.time_ns() // 1000,
        request=data.request,
    )
    await runtime.projector.follow()
    return report


@get("/v1/erasures", summary="Every erasure: who, when, why, what it removed (no address)")
async def list_erasures(runtime: NamedDependency[Runtime]) -> list[ErasureEntry]:
    return await erasures(runtime.store)


@post(
    "/v1/retention",
    status_code=200,
    summary="Remove the bodies the policy's [retention] no longer keeps (or, dry_run, report)",
    description=(
        "Bodies of receipts whose events are all of kinds with a retention period "
        "(delivered, deferred, ignored), once it has passed, and that are no evidence of an "
        "active suppression; each run appends a retention record naming them."
    ),
)
async def run_retention(
    runtime: NamedDependency[Runtime],
    request: Request[Any, Any, Any],
    dry_run: Annotated[
        bool, QueryParameter(description="report only (the default); false: remove")
    ] = True,
) -> RetentionReport:
    return await retention(
        runtime.store,
        runtime.expected or runtime.policy,  # serve --policy's periods, else the active policy's
        time.time_ns() // 1000,
        actor=str(request.state.get("api_key_name", "api")),
        note="the policy's retention periods",
        dry_run=dry_run,
    )
