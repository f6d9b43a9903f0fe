"""Console actions on the change feed's endpoints (shown on the ledger page): pause,
resume and test one, as `bounceledger endpoints` and /v1/endpoints do. Adding and
removing an endpoint stay with the CLI and the API: a new endpoint's secret is shown
once, and a page is no place to show it."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.response import Redirect

from api.console.render import back
from api.push import endpoints
from api.push.deliverer import probe
from api.push.signing import EndpointKeyMissing
from api.runtime import Runtime

LEDGER = "/console/ledger"
_ID = PathParameter(max_length=64, pattern=r"^ep_[0-9a-f]{1,60}$")


@post("/endpoints/{eid:str}/pause", status_code=303)
async def pause(
    eid: Annotated[str, _ID], request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Redirect:
    try:
        await endpoints.pause(runtime.store, eid)
    except endpoints.UnknownEndpoint:
        return back(request, LEDGER, f"there is no endpoint {eid}")
    return back(request, LEDGER, f"endpoint {eid} paused: nothing is sent until it is resumed")


@post("/endpoints/{eid:str}/resume", status_code=303)
async def resume(
    eid: Annotated[str, _ID], request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Redirect:
    try:
        shown = await endpoints.resume(runtime.store, eid, now=time.time_ns() // 1000)
    except endpoints.UnknownEndpoint:
        return back(request, LEDGER, f"there is no endpoint {eid}")
    return back(
        request, LEDGER, f"endpoint {eid} resumed: deliveries go on after entry {shown.delivered}"
    )


@post("/endpoints/{eid:str}/test", status_code=303)
async def test(
    eid: Annotated[str, _ID], request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Redirect:
    try:
        got = await probe(runtime.store, runtime.settings.endpoint_key, eid)
    except endpoints.UnknownEndpoint:
        return back(request, LEDGER, f"there is no endpoint {eid}")
    except EndpointKeyMissing as exc:
        return back(request, LEDGER, f"not sent: {exc}")
    if got.ok:
        notice = f"test sent to {eid}: HTTP {got.status} in {got.seconds:g} s"
    else:
        notice = f"test to {eid} failed: {got.error or 'no answer'} ({got.seconds:g} s)"
    return back(request, LEDGER, notice)


HANDLERS = [pause, resume, test]
