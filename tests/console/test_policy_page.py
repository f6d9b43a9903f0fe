"""The console's policy page: the active policy and its history, a candidate's preview
(who would change, counted by transition), the diff as CSV (guarded against formula
injection), applying it with a note (recorded with the signed-in key's name, as
`rebuild --policy --note` does) and every refusal: bad TOML, no note, no CSRF token."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from api.console.policy_pages import csv_cell
from tests.api.helpers import event, hard_bounce, post_webhook
from tests.conftest import AUTH, settle
from tests.console.helpers import csrf_token, sign_in

pytestmark = pytest.mark.both_backends

STRICT = "# one soft bounce is enough\nsoft_bounce_threshold = 1\n"
HOSTILE = "<script>window.__pwned=1</script>"
SOFT = ("a@example.org", "b@example.org", "=1+2@example.org")
NO_FILE = {"file": ("", b"", "application/octet-stream")}  # a browser's empty file input


async def _history(client: Any) -> dict[str, Any]:
    response = await client.get("/v1/audit/policies", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _receipts(client: Any) -> int:
    return int((await client.get("/healthz", headers=AUTH)).json()["receipts"])


async def _soft_bounces(client: Any) -> None:
    """One soft bounce for each of SOFT (not suppressed under the default threshold of
    3), and a hard bounce for c@ (suppressed under any threshold)."""
    for number, rcpt in enumerate(SOFT):
        body = json.dumps(event("bounce", rcpt, f"s{number}", bounce="soft")).encode()
        assert (await post_webhook(client, body)).status_code == 200
    assert (await post_webhook(client, hard_bounce("c@example.org"))).status_code == 200
    await settle(client)


async def _token(client: Any) -> str:
    return csrf_token((await client.get("/console/policy")).text)


async def _preview(client: Any, toml: str, files: dict[str, Any] | None = None) -> Any:
    return await client.post(
        "/console/policy/preview",
        data={"toml": toml, "_csrf_token": await _token(client)},
        files=files or NO_FILE,
    )


async def test_the_page_shows_the_active_policy_and_the_form(client: Any) -> None:
    await sign_in(client)
    response = await client.get("/console/policy")
    assert response.status_code == 200
    html = response.text
    assert "Soft-bounce threshold</dt><dd>3</dd>" in html
    assert "Delivery clears soft bounces</dt><dd>yes</dd>" in html
    assert (await _history(client))["active_hash"] in html
    assert "No policy change has been recorded" in html
    assert (
        '<form method="post" action="/console/policy/preview" enctype="multipart/form-data"' in html
    )
    assert '<label for="toml">Candidate policy (TOML)</label>' in html
    assert 'name="toml"' in html
    assert '<label for="file">or upload a file</label>' in html
    assert 'name="file" type="file"' in html
    assert '<button type="submit">Preview</button>' in html
    assert 'href="/v1/audit/policies"' in html


async def test_a_preview_counts_and_lists_who_would_change_and_writes_nothing(
    client: Any,
) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    before = await _receipts(client)
    response = await _preview(client, STRICT)
    assert response.status_code == 200, response.text
    html = response.text
    assert "3 address(es) would change" in html
    assert "<li>not suppressed -> soft_bounce_threshold: 3</li>" in html
    for rcpt in SOFT:
        assert f">{rcpt}</a></td><td>not suppressed</td><td>soft_bounce_threshold</td>" in html
    assert "c@example.org" not in html  # suppressed before and after: not a change
    # the forms to download and to apply carry the candidate
    assert 'action="/console/policy/preview.csv"' in html
    assert "Download the changes as CSV" in html
    assert 'action="/console/policy/apply"' in html
    assert '<label for="note">Why? (recorded with your name)</label>' in html
    assert 'name="note" type="text" required' in html
    assert "Apply to all of history" in html
    assert 'name="toml" value="# one soft bounce is enough\nsoft_bounce_threshold = 1\n"' in html
    # a dry run: nothing recorded, nothing changed
    assert await _receipts(client) == before
    assert (await _history(client))["changes"] == []
    status = (await client.get("/v1/suppressions/a@example.org", headers=AUTH)).json()
    assert status["suppressed"] is False


async def test_an_uploaded_file_is_previewed_too(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    upload = {"file": ("strict.toml", STRICT.replace("\n", "\r\n").encode(), "application/toml")}
    response = await _preview(client, "", files=upload)
    assert response.status_code == 200, response.text
    assert "3 address(es) would change" in response.text
    not_utf8 = {"file": ("bad.toml", b"soft_bounce_threshold = 1 # \xff\n", "application/toml")}
    refused = await _preview(client, "", files=not_utf8)
    assert refused.status_code == 400
    assert "bad.toml is not UTF-8 text" in refused.text


async def test_the_preview_table_is_capped(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.console import policy_pages

    monkeypatch.setattr(policy_pages, "PREVIEW_ROWS", 2)
    await _soft_bounces(client)
    await sign_in(client)
    html = (await _preview(client, STRICT)).text
    assert "3 address(es) would change" in html
    assert "The first 2 of 3 addresses (download the CSV for all of them)" in html
    assert html.count("<td>not suppressed</td>") == 2


async def test_the_active_policy_previews_as_no_change_and_offers_no_apply(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    response = await _preview(client, "# the defaults\nsoft_bounce_threshold = 3\n")
    assert response.status_code == 200
    assert "This is the active policy: applying it would change nothing." in response.text
    assert "0 address(es) would change" in response.text
    assert 'action="/console/policy/apply"' not in response.text


async def test_the_changes_download_as_csv_guarded_against_formulas(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    response = await client.post(
        "/console/policy/preview.csv",
        data={"toml": STRICT, "_csrf_token": await _token(client)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert ".csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["email", "before", "after"]
    assert sorted(rows[1:]) == sorted(
        [
            ["a@example.org", "not suppressed", "soft_bounce_threshold"],
            ["b@example.org", "not suppressed", "soft_bounce_threshold"],
            ["'=1+2@example.org", "not suppressed", "soft_bounce_threshold"],
        ]
    )
    assert (await _history(client))["changes"] == []


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    for text in ("a@example.org", "not suppressed", "", "'quoted"):
        assert csv_cell(text) == text


async def test_invalid_toml_is_shown_with_its_text_kept(client: Any) -> None:
    await sign_in(client)
    before = await _receipts(client)
    text = f"# {HOSTILE}</textarea>\nsoft_bounce_treshold = 1\n"
    response = await _preview(client, text)
    assert response.status_code == 400
    html = response.text
    assert 'class="error" role="alert"' in html
    assert "soft_bounce_treshold" in html.split('role="alert">')[1].split("</p>")[0]
    assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;/textarea&gt;" in html  # kept
    assert html.count("</textarea>") == 1
    assert '<label for="toml">Candidate policy (TOML)</label>' in html  # the same page
    for bad in ("soft_bounce_threshold = 0\n", "soft_bounce_window = 'soon'\n", "= broken"):
        assert (await _preview(client, bad)).status_code == 400, bad
    unknown = await _preview(client, "[providers.nosuch]\nbounce = 'ignore'\n")
    assert unknown.status_code == 400
    assert "unknown provider &#39;nosuch&#39;" in unknown.text
    empty = await _preview(client, "  \n")
    assert empty.status_code == 400
    assert "no candidate policy" in empty.text
    assert await _receipts(client) == before


async def test_apply_records_the_change_and_serves_the_new_state(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    text = f"# {HOSTILE}\nsoft_bounce_threshold = 1\n"
    preview = await _preview(client, text)
    assert preview.status_code == 200
    assert "<script>window.__pwned" not in preview.text
    assert "# &lt;script&gt;window.__pwned=1&lt;/script&gt;" in preview.text
    note = f"one is enough {HOSTILE}"
    applied = await client.post(
        "/console/policy/apply",
        data={"toml": text, "note": note, "_csrf_token": csrf_token(preview.text)},
        follow_redirects=False,
    )
    assert applied.status_code == 303, applied.text
    assert applied.headers["location"].startswith("/console/policy?done=")
    # served at once: this instance follows the new policy before the redirect
    status = await client.get("/v1/suppressions/a@example.org", headers=AUTH)
    assert status.status_code == 200, status.text
    assert (status.json()["suppressed"], status.json()["reason"]) == (
        True,
        "soft_bounce_threshold",
    )
    history = await _history(client)
    [change] = history["changes"]
    assert (change["actor"], change["note"], change["origin"], change["active"]) == (
        "ops",
        note,
        "console",
        True,
    )
    assert change["toml"] == text
    assert change["policy_hash"] == history["active_hash"]
    shown = await client.get(applied.headers["location"])
    html = shown.text
    assert f"applied by ops, recorded as receipt {change['receipt']}" in html
    assert "3 addresses changed" in html
    assert "Soft-bounce threshold</dt><dd>1</dd>" in html
    assert 'class="active-policy"' in html
    assert f'href="/console/receipts/{change["receipt"]}"' in html
    # the note, the recorded TOML, and the TOML again in the textarea (to edit): as text
    assert "<script>window.__pwned" not in html
    assert html.count("&lt;script&gt;window.__pwned=1&lt;/script&gt;") == 3
    # applying the same policy again changes nothing and records nothing
    again = await client.post(
        "/console/policy/apply",
        data={"toml": text, "note": "again", "_csrf_token": csrf_token(html)},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert "already" in (await client.get(again.headers["location"])).text
    assert len((await _history(client))["changes"]) == 1


async def test_apply_without_a_note_writes_nothing(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    before = await _receipts(client)
    for note in ("", "   "):
        refused = await client.post(
            "/console/policy/apply",
            data={"toml": STRICT, "note": note, "_csrf_token": await _token(client)},
            follow_redirects=False,
        )
        assert refused.status_code == 400
        assert "nothing applied: say why the policy changes" in refused.text
        assert "3 address(es) would change" in refused.text  # back on the preview
    assert await _receipts(client) == before
    assert (await _history(client))["changes"] == []
    status = (await client.get("/v1/suppressions/a@example.org", headers=AUTH)).json()
    assert status["suppressed"] is False


async def test_the_forms_need_the_csrf_token(client: Any) -> None:
    await _soft_bounces(client)
    await sign_in(client)
    before = await _receipts(client)
    for action, data in (
        ("/console/policy/preview", {"toml": STRICT}),
        ("/console/policy/preview.csv", {"toml": STRICT}),
        ("/console/policy/apply", {"toml": STRICT, "note": "no token"}),
    ):
        response = await client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 403, action
    assert await _receipts(client) == before
    assert (await _history(client))["changes"] == []


async def test_the_policy_pages_ask_to_sign_in(client: Any) -> None:
    response = await client.get("/console/policy", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


STREAMED = """soft_bounce_threshold = 1
[streams.transactional]
blocked_by = ["hard_bounce", "complaint", "unsubscribe", "manual", "provider_suppressed"]
note = "password resets"
[streams.newsletter]
"""


async def test_a_preview_with_streams_names_the_streams_each_change_affects(
    client: Any,
) -> None:
    """Soft bounces reaching a threshold of 1 block the newsletter (every reason), not the
    transactional stream (not blocked by soft_bounce_threshold): both the page and the
    CSV say which streams' verdicts change."""
    await _soft_bounces(client)
    await sign_in(client)
    page = await _preview(client, STREAMED)
    assert page.status_code == 200, page.text
    assert '<th scope="col">Streams whose verdict changes</th>' in page.text
    assert "<td>newsletter</td>" in page.text
    download = await client.post(
        "/console/policy/preview.csv",
        data={"toml": STREAMED, "_csrf_token": await _token(client)},
    )
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["email", "before", "after", "streams"]
    assert {row[3] for row in rows[1:]} == {"newsletter"}
    overview = await client.get("/console/policy")
    assert "<dt>Streams</dt><dd>none (every read answers for all mail)</dd>" in overview.text
