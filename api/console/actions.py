"""Console actions on one address: suppress and release, each with a required note,
recorded with the signed-in operator's key name as the actor (as the API does).

A release lifts the bounces, and the causes the operator ticked on the page that showed
them (`also`); the page sends the newest evidence it showed (`expect`), and the release
is refused, with nothing recorded, when newer evidence has arrived since."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from api import paths
from api.console.pages import FORM
from api.console.render import address_path, back, operator
from api.runtime import Runtime
from projections import operator as operator_actions
from projections import releases, streams
from projections.errors import UnknownStream
from projections.recipients import normalize_recipient


def _where(email: str, stream: object = None) -> tuple[str, str]:
    """The address, normalised, and its console page (for the stream the page showed,
    `shown_stream` of its form: the operator comes back to the view they acted from; the
    action itself is for every stream)."""
    address = normalize_recipient(email) or email
    shown = f"?{urlencode({'stream': stream})}" if isinstance(stream, str) and stream else ""
    return address, f"/console/address/{address_path(address)}{shown}"


@post("/address/{email:str}/suppress", status_code=303)
async def suppress(
    email: FromPath[str],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    data: Annotated[dict[str, str], FORM],
) -> Redirect:
    address, where = _where(paths.address(email), data.get("shown_stream"))
    note = data.get("note", "").strip()
    if not note:
        return back(request, where, "nothing done: a suppress needs a note saying why")
    try:
        only = _only(runtime, data.get("for_stream"))
    except UnknownStream as exc:
        return back(request, where, f"nothing done: {exc}")
    seq = await operator_actions.record(
        runtime.store, "suppress", address, actor=operator(request), note=note,
        at=time.time_ns() // 1000, streams=only,
    )  # fmt: skip
    await runtime.projector.wait_until(seq, timeout=2.0)
    done = f"suppressed{_for(only)} by {operator(request)}, recorded as receipt {seq}"
    return back(request, where, done)


def _only(runtime: Runtime, chosen: object) -> tuple[str, ...]:
    """The streams an action is for, as its form names one (none: every stream);
    UnknownStream for one the policy does not define."""
    if not isinstance(chosen, str) or not chosen:
        return ()
    streams.scope(runtime.projector.mapper.policy, chosen)
    return (chosen,)


def _for(only: tuple[str, ...]) -> str:
    return f" for the {only[0]} stream" if only else ""


@post("/address/{email:str}/release", status_code=303)
async def release(
    email: FromPath[str], request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Redirect:
    form = await request.form()
    address, where = _where(paths.address(email), form.get("shown_stream"))
    note = str(form.get("note", "")).strip()
    if not note:
        return back(request, where, "nothing done: a release needs a note saying why")
    expect = str(form.get("expect", "")).strip()
    if not expect.isdigit():  # the page always sends what it showed
        return back(
            request, where, "nothing released: the page did not say what it showed; look again"
        )
    try:
        also = releases.parse_also([str(value) for value in form.getall("also", [])])
        only = _only(runtime, form.get("for_stream"))
    except (ValueError, UnknownStream) as exc:
        return back(request, where, f"nothing released: {exc}")
    (outcome,) = await releases.release_many(
        runtime.store,
        runtime.projector.policy_hash,
        [releases.Asked(address, int(expect))],
        actor=operator(request),
        note=note,
        also=also,
        now=time.time_ns() // 1000,
        settle=lambda seq: runtime.projector.wait_until(seq, timeout=2.0),
        streams=only,
    )
    if outcome.refused is not None:
        return back(request, where, outcome.refused)
    if outcome.receipt is None:
        nothing = f"has no cause of the {only[0]} stream alone" if only else "is not suppressed"
        return back(request, where, f"nothing released: the address {nothing}")
    done = f"released{_for(only)} by {operator(request)}, recorded as receipt {outcome.receipt}"
    return back(request, where, done)


HANDLERS = [suppress, release]
