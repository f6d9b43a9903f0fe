"""Outbound webhook endpoints over HTTP: add (the secret is answered this once), list,
show, remove, pause, resume, and send a test message.

Every route needs an API key, as every route but the webhooks' does (api/auth.py).
Adding an endpoint and testing one need the endpoint key as well (api/push/signing.py):
without one the service answers 409.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.push import endpoints
from api.push.deliverer import Probe, probe
from api.push.endpoints import MAX_URL, Created, Endpoint
from api.runtime import Runtime
from api.schemas import Problem, not_found

_ID = PathParameter(max_length=64, description="the endpoint's id (`ep_…`)")
_FROM = (
    "where the endpoint starts reading the feed: `now` (the default: what is appended "
    "from now on), `0` (from the beginning) or a cursor of GET /v1/changes"
)
NO_KEY = {
    409: ResponseSpec(
        data_container=Problem,
        description="no endpoint key is configured (BOUNCELEDGER_ENDPOINT_KEY)",
    )
}


class NewEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where to deliver the feed (http or https, no credentials), what for, from where."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL)]
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    start: Annotated[str, msgspec.Meta(max_length=64, description=_FROM)] | None = msgspec.field(
        default=None, name="from"
    )


@post(
    "/v1/endpoints",
    status_code=201,
    summary="Add an endpoint the change feed is pushed to; its secret is shown this once",
    description=(
        "Each entry of the feed after `from` is POSTed to `url`, in order, one per request, "
        "signed as Standard Webhooks prescribes (`webhook-id`, `webhook-timestamp`, "
        "`webhook-signature`) with the `secret` of this answer; it is derived from the "
        "endpoint key, never stored, and never shown again. 400 for a URL other than http(s) "
        "or one with credentials; 409 without an endpoint key (BOUNCELEDGER_ENDPOINT_KEY)."
    ),
    responses=NO_KEY,
)
async def add_endpoint(
    data: JSONBody[NewEndpoint],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
) -> Created:
    return await endpoints.add(
        runtime.store,
        runtime.settings.endpoint_key,
        data.url,
        description=data.description,
        actor=str(request.state.get("api_key_name", "api")),
        start=data.start,
        now=time.time_ns() // 1000,
    )


@get("/v1/endpoints", summary="Every endpoint and how its deliveries stand (never a secret)")
async def list_endpoints(runtime: NamedDependency[Runtime]) -> list[Endpoint]:
    return await endpoints.listing(runtime.store)


@get(
    "/v1/endpoints/{eid:str}",
    summary="One endpoint and how its deliveries stand",
    responses=not_found("endpoint"),
)
async def get_endpoint(eid: Annotated[str, _ID], runtime: NamedDependency[Runtime]) -> Endpoint:
    return await endpoints.get(runtime.store, eid)


@delete(
    "/v1/endpoints/{eid:str}",
    status_code=204,
    summary="Remove an endpoint: nothing more is sent to it",
    responses=not_found("endpoint"),
)
async def remove_endpoint(eid: Annotated[str, _ID], runtime: NamedDependency[Runtime]) -> None:
    await endpoints.remove(runtime.store, eid)


@post(
    "/v1/endpoints/{eid:str}/pause",
    status_code=200,
    summary="Stop deliveries to an endpoint until it is resumed",
    responses=not_found("endpoint"),
)
async def pause_endpoint(eid: Annotated[str, _ID], runtime: NamedDependency[Runtime]) -> Endpoint:
    return await endpoints.pause(runtime.store, eid)


@post(
    "/v1/endpoints/{eid:str}/resume",
    status_code=200,
    summary="Deliver to a paused, failing or disabled endpoint again, at once",
    description=(
        "Deliveries go on from the entry after the last one delivered (or after `from`), "
        "with the whole retry schedule ahead."
    ),
    responses=not_found("endpoint"),
)
async def resume_endpoint(
    eid: Annotated[str, _ID],
    runtime: NamedDependency[Runtime],
    start: Annotated[
        str | None,
        QueryParameter(
            name="from",
            max_length=64,
            description="`0` or a cursor of GET /v1/changes to start from instead",
        ),
    ] = None,
) -> Endpoint:
    return await endpoints.resume(runtime.store, eid, start=start, now=time.time_ns() // 1000)


@post(
    "/v1/endpoints/{eid:str}/test",
    status_code=200,
    summary="Send an endpoint one signed `endpoint.test` message now, and say what it got",
    description="The endpoint's place in the feed does not move.",
    responses={**not_found("endpoint"), **NO_KEY},
)
async def probe_endpoint(eid: Annotated[str, _ID], runtime: NamedDependency[Runtime]) -> Probe:
    return await probe(runtime.store, runtime.settings.endpoint_key, eid)
