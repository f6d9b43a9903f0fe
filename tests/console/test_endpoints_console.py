"""The change feed's endpoints on the console's ledger page, on both backends: each
endpoint's state (delivered cursor, failing since, next retry, the last answer) and the
pause, resume and test buttons, which act as `bounceledger endpoints` does."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_push import add, bounce, push_settings, shown, until
from tests.console.helpers import post_form, sign_in
from tests.receiver import Receiver, receiving

pytestmark = pytest.mark.both_backends


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


def section(page: str) -> str:
    return page.split('id="endpoints"')[1].split("</section>")[0]


async def notice(client: Any, answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/console/ledger?done=")
    page = (await client.get(location)).text
    found = re.search(r'role="status"[^>]*>(.*?)<', page, re.DOTALL)
    assert found is not None, "no notice on the page"
    return html.unescape(found.group(1)).strip()


async def test_the_ledger_page_shows_endpoints_and_acts_on_them(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    async with make_client(settings=push_settings(db_path, (60.0,) * 7)) as client:
        await sign_in(client)
        empty = section((await client.get("/console/ledger")).text)
        assert "No endpoint is configured." in empty
        created = await add(client, receiver.url + "/hook", description="the CRM")
        eid = created["id"]
        await bounce(client, "a@example.org")
        await until(client, eid, lambda e: e["delivered"] == 1)
        page = section((await client.get("/console/ledger")).text)
        assert eid in page
        assert "the CRM" in page
        assert "entry 1" in page
        assert created["secret"] not in page  # never shown again
        assert '<span class="badge ok">active</span>' in page
        # pause: nothing is delivered until resumed
        paused = await post_form(client, "/console/ledger", f"/console/endpoints/{eid}/pause", {})
        assert "paused" in await notice(client, paused)
        assert (await shown(client, eid))["state"] == "paused"
        await bounce(client, "b@example.org")
        assert len(receiver.accepted("/hook")) == 1
        page = section((await client.get("/console/ledger")).text)
        assert f'action="/console/endpoints/{eid}/resume"' in page
        resumed = await post_form(client, "/console/ledger", f"/console/endpoints/{eid}/resume", {})
        assert "resumed" in await notice(client, resumed)
        await until(client, eid, lambda e: e["delivered"] == 2)
        # a failing receiver: the next retry and the answer are shown
        receiver.fail_first(len(receiver.all()) + 10, status=503)
        await bounce(client, "c@example.org")
        failing = await until(client, eid, lambda e: e["failing_since"] is not None)
        page = section((await client.get("/console/ledger")).text)
        assert "HTTP 503" in page
        assert failing["next_attempt"] is not None
        # test: one signed message now, and what it got
        tested = await post_form(client, "/console/ledger", f"/console/endpoints/{eid}/test", {})
        assert f"test to {eid} failed: HTTP 503" in await notice(client, tested)
        receiver.fail_first(0)
        tested = await post_form(client, "/console/ledger", f"/console/endpoints/{eid}/test", {})
        assert f"test sent to {eid}: HTTP 200" in await notice(client, tested)
        assert (await shown(client, eid))["delivered"] == 2  # a test moves nothing


async def test_the_buttons_need_a_session_and_a_form_token(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url + "/hook")
        eid = created["id"]
        signed_out = await client.post(f"/console/endpoints/{eid}/pause", follow_redirects=False)
        assert signed_out.status_code == 303  # to the sign-in page
        assert signed_out.headers["location"].startswith("/console/login")
        await sign_in(client)
        forged = await client.post(f"/console/endpoints/{eid}/pause", follow_redirects=False)
        assert forged.status_code == 403
        assert (await shown(client, eid))["state"] == "active"
        unknown = await post_form(
            client, "/console/ledger", "/console/endpoints/ep_0123456789ab/pause", {}
        )
        assert "there is no endpoint ep_0123456789ab" in await notice(client, unknown)
