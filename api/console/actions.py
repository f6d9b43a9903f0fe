"""Console actions on one address: suppress and release, each with a required note,
recorded with the signed-in operator's key name as the actor (as the API does)."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, post
from litestar.params import FromPath
from litestar.response import Redirect

from api.console.pages import FORM
from api.console.render import back, operator, runtime
from projections import operator as operator_actions
from projections.recipients import normalize_recipient


async def _act(
    action: operator_actions.Action,
    email: str,
    data: dict[str, str],
    request: Request[Any, Any, Any],
) -> Redirect:
    address = normalize_recipient(email) or email
    where = f"/console/address/{quote(address, safe='@')}"
    note = data.get("note", "").strip()
    if not note:
        return back(where, f"nothing done: a {action} needs a note saying why")
    rt = runtime(request)
    seq = await operator_actions.record(
        rt.store, action, address, actor=operator(request), note=note, at=time.time_ns() // 1000
    )
    await rt.projector.wait_until(seq, timeout=2.0)
    done = "suppressed" if action == "suppress" else "released"
    return back(where, f"{done} by {operator(request)}, recorded as receipt {seq}")


@post("/address/{email:str}/suppress", status_code=303)
async def suppress(
    email: FromPath[str], request: Request[Any, Any, Any], data: Annotated[dict[str, str], FORM]
) -> Redirect:
    return await _act("suppress", email, data, request)


@post("/address/{email:str}/release", status_code=303)
async def release(
    email: FromPath[str], request: Request[Any, Any, Any], data: Annotated[dict[str, str], FORM]
) -> Redirect:
    return await _act("release", email, data, request)


HANDLERS = [suppress, release]
