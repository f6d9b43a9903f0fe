"""Streams over HTTP, on both backends: SMTP2GO webhooks carrying a custom `X-Stream`
header, a policy with three streams, and every read asked per stream — a newsletter
unsubscribe blocks the newsletter, not the password reset."""

from __future__ import annotations

import json
from typing import Any

import pytest

from projections import Policy
from projections.errors import UnknownStream
from projections.policy import Stream
from projections.streams import scope
from tests.api.helpers import event, post_webhook
from tests.conftest import AUTH, settle

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

TRANSACTIONAL = ["hard_bounce", "complaint", "unsubscribe", "manual", "provider_suppressed"]
POLICY = Policy(
    providers={"smtp2go": {"unsubscribe": "unsubscribe"}},  # ignored by default (upstream)
    streams={
        "transactional": Stream(blocked_by=TRANSACTIONAL),  # type: ignore[arg-type]
        "newsletter": Stream(match={"smtp2go_header": {"X-Stream": "newsletter"}}),
        "marketing": Stream(
            blocked_by_any_stream=["complaint"],
            match={"smtp2go_header": {"X-Stream": "promo"}},
        ),
    },
)
HISTORY = [
    event("unsubscribe", "alice@example.org", "s1", **{"X-Stream": "newsletter"}),
    event("spam", "bob@example.org", "s2", **{"X-Stream": "newsletter"}),
    event("bounce", "carol@example.org", "s3", bounce="hard", **{"X-Stream": "newsletter"}),
    event("unsubscribe", "dave@example.org", "s4"),  # names no stream: every stream
]
EVERYONE = ["alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"]
# who each stream may not mail
BLOCKED = {
    "transactional": {"carol@example.org", "dave@example.org"},
    "newsletter": set(EVERYONE),
    "marketing": {"bob@example.org", "carol@example.org", "dave@example.org"},
}


async def _send_history(client: Any) -> None:
    for body in HISTORY:
        assert (await post_webhook(client, json.dumps(body).encode())).status_code == 200
    await settle(client)


async def test_each_stream_answers_for_its_own_kind_of_mail(make_client: Any) -> None:
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        for stream, blocked in BLOCKED.items():
            for email in EVERYONE:
                got = await client.get(
                    f"/v1/suppressions/{email}", params={"stream": stream}, headers=AUTH
                )
                assert got.status_code == 200, got.text
                assert got.json()["suppressed"] is (email in blocked), (stream, email)
                assert got.json()["stream"] == stream
            checked = await client.post(
                "/v1/suppressions/check",
                json={"stream": stream, "emails": EVERYONE},
                headers=AUTH,
            )
            assert checked.status_code == 200, checked.text
            assert {hit["email"] for hit in checked.json()["suppressed"]} == blocked, stream
            assert checked.json()["stream"] == stream


async def test_a_stream_answer_names_the_cause_that_decided_and_the_others(
    make_client: Any,
) -> None:
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        newsletter = await client.get(
            "/v1/suppressions/alice@example.org", params={"stream": "newsletter"}, headers=AUTH
        )
        body = newsletter.json()
        assert (body["reason"], body["receipt"]) == ("unsubscribe", 2)  # 1: the policy record
        assert body["causes"][0]["streams"] == ["newsletter"]
        assert body["other_causes"] == []
        transactional = await client.get(
            "/v1/suppressions/alice@example.org",
            params={"stream": "transactional"},
            headers=AUTH,
        )
        body = transactional.json()
        assert (body["suppressed"], body["reason"], body["causes"]) == (False, None, [])
        assert [c["reason"] for c in body["other_causes"]] == ["unsubscribe"]
        checked = await client.post(
            "/v1/suppressions/check",
            json={"stream": "marketing", "emails": ["BOB@example.org"]},
            headers=AUTH,
        )
        (hit,) = checked.json()["suppressed"]
        assert (hit["email"], hit["reason"], hit["reasons"]) == (
            "BOB@example.org",
            "complaint",
            ["complaint"],
        )


async def test_without_a_stream_every_read_answers_as_before(make_client: Any) -> None:
    """The strictest verdict, and the same fields as before streams existed."""
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        checked = await client.post(
            "/v1/suppressions/check", json={"emails": EVERYONE}, headers=AUTH
        )
        assert {hit["email"] for hit in checked.json()["suppressed"]} == set(EVERYONE)
        assert "stream" not in checked.json()
        one = (await client.get("/v1/suppressions/alice@example.org", headers=AUTH)).json()
        assert one["suppressed"] is True
        assert "stream" not in one
        assert "other_causes" not in one


async def test_an_unknown_stream_is_refused_with_the_streams_there_are(make_client: Any) -> None:
    async with make_client(policy=POLICY) as client:
        got = await client.get(
            "/v1/suppressions/alice@example.org", params={"stream": "weekly"}, headers=AUTH
        )
        assert got.status_code == 400
        assert "unknown stream 'weekly'" in got.json()["detail"]
        assert "marketing, newsletter, transactional" in got.json()["detail"]
        checked = await client.post(
            "/v1/suppressions/check", json={"stream": "weekly", "emails": EVERYONE}, headers=AUTH
        )
        assert checked.status_code == 400
    with pytest.raises(UnknownStream, match=r"add \[streams.NAME\] tables"):
        scope(Policy(), "weekly")  # a policy without streams says how to add one


async def _listed(client: Any, **params: Any) -> list[dict[str, Any]]:
    """Every entry of the list, walking its pages."""
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        asked = {**params, **({"after": after} if after else {})}
        page = await client.get("/v1/suppressions", params=asked, headers=AUTH)
        assert page.status_code == 200, page.text
        entries += page.json()["items"]
        after = page.json()["next"]
        if after is None:
            return entries


async def test_the_list_for_a_stream_holds_whom_it_may_not_mail(make_client: Any) -> None:
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        for stream, blocked in BLOCKED.items():
            for limit in (1, 2, 1000):  # pages of one pass over rows of other streams
                listed = await _listed(client, stream=stream, limit=limit)
                assert [e["email"] for e in listed] == sorted(blocked), (stream, limit)
            by_since = await _listed(client, stream=stream, sort="-since", limit=1)
            assert {e["email"] for e in by_since} == blocked
        complaints = await _listed(client, stream="marketing", reason="complaint")
        assert [(e["email"], e["reasons"]) for e in complaints] == [
            ("bob@example.org", ["complaint"])
        ]
        # the newsletter's unsubscribe, listed for the newsletter, is not the others'
        alice = [e for e in await _listed(client, stream="newsletter") if e["email"][0] == "a"]
        assert alice[0]["reason"] == "unsubscribe"
        bad = await client.get("/v1/suppressions", params={"stream": "weekly"}, headers=AUTH)
        assert bad.status_code == 400


async def _may_mail(client: Any, email: str, stream: str) -> bool:
    got = await client.get(f"/v1/suppressions/{email}", params={"stream": stream}, headers=AUTH)
    assert got.status_code == 200, got.text
    return got.json()["suppressed"] is False


async def _release_newsletter_unsubscribe(client: Any, email: str) -> dict[str, Any]:
    released = await client.request(
        "DELETE",
        f"/v1/suppressions/{email}",
        params={"stream": "newsletter", "also": "unsubscribe", "note": "asked"},
        headers=AUTH,
    )
    assert released.status_code == 200, released.text
    return dict(released.json())


async def test_operator_actions_are_scoped_to_the_streams_they_name(make_client: Any) -> None:
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        erin = "erin@example.org"
        put = await client.put(
            f"/v1/suppressions/{erin}",
            json={"note": "no more newsletters, by phone", "streams": ["newsletter"]},
            headers=AUTH,
        )
        assert put.status_code == 200, put.text
        assert (put.json()["stream"], put.json()["reason"]) == ("newsletter", "manual")
        assert not await _may_mail(client, erin, "newsletter")
        assert await _may_mail(client, erin, "transactional")
        assert await _may_mail(client, erin, "marketing")
        # a release for the newsletter lifts the newsletter's unsubscribe, named
        await _release_newsletter_unsubscribe(client, "alice@example.org")
        assert await _may_mail(client, "alice@example.org", "newsletter")
        # …but never a global cause: dave's unsubscribe names no stream, so it stays
        kept = await _release_newsletter_unsubscribe(client, "dave@example.org")
        assert kept["suppressed"] is True
        assert not await _may_mail(client, "dave@example.org", "newsletter")
        unknown = await client.put(
            f"/v1/suppressions/{erin}", json={"note": "x", "streams": ["weekly"]}, headers=AUTH
        )
        assert unknown.status_code == 400
        assert "unknown stream 'weekly'" in unknown.json()["detail"]


async def test_metrics_count_whom_each_stream_may_not_mail(make_client: Any) -> None:
    async with make_client(policy=POLICY) as client:
        await _send_history(client)
        text = (await client.get("/metrics", headers=AUTH)).text
        for stream, blocked in BLOCKED.items():
            line = f'bounceledger_stream_suppressions{{stream="{stream}"}} {len(blocked)}.0'
            assert line in text, stream
        # counted again once the projection moves
        put = await client.put(
            "/v1/suppressions/erin@example.org",
            json={"note": "by phone", "streams": ["marketing"]},
            headers=AUTH,
        )
        assert put.status_code == 200
        text = (await client.get("/metrics", headers=AUTH)).text
        assert 'bounceledger_stream_suppressions{stream="marketing"} 4.0' in text
        assert 'bounceledger_stream_suppressions{stream="transactional"} 2.0' in text
