"""The edges of authentication at the door (api/auth.py), each stated as behaviour: which
scheme carries a key, what a Basic credential must look like, and what a refusal says.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from api.settings import load_settings
from tests.api.helpers import basic, bearer, event, post_webhook
from tests.conftest import API_KEY, SECRET

SUPPRESSIONS = "/v1/suppressions"


def _body(n: int) -> bytes:
    return json.dumps(event("bounce", f"edge{n}@example.org", f"edge-{n}", bounce="hard")).encode()


async def test_an_api_key_under_another_scheme_is_refused(client: Any) -> None:
    for scheme in ("Basic", "Token", "bearerX", ""):
        refused = await client.get(SUPPRESSIONS, headers={"Authorization": f"{scheme} {API_KEY}"})
        assert refused.status_code == 401, scheme
        assert refused.json()["detail"] == "a valid API key is required: Authorization: Bearer KEY"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert (await client.get(SUPPRESSIONS, headers={"Authorization": "Bearer"})).status_code == 401
    # the scheme's case does not matter, nor how many spaces follow it (RFC 7235: 1*SP);
    # the key is the whole rest of the header
    for header in (f"bEaReR {API_KEY}", f"Bearer   {API_KEY}"):
        accepted = await client.get(SUPPRESSIONS, headers={"Authorization": header})
        assert accepted.status_code == 200, header
    split = {"Authorization": f"Bearer {API_KEY[:5]} {API_KEY[5:]}"}
    assert (await client.get(SUPPRESSIONS, headers=split)).status_code == 401


async def test_a_probe_shows_its_figures_only_for_a_bearer_key(client: Any) -> None:
    keyed = (await client.get("/healthz", headers=bearer(API_KEY))).json()
    assert "receipts" in keyed
    for headers in ({"Authorization": f"Basic {API_KEY}"}, {"Authorization": "Bearer"}, {}):
        assert (await client.get("/healthz", headers=headers)).json() == {"status": "ok"}


async def test_without_api_keys_every_guarded_route_says_how_to_configure_one(
    make_client: Any, db_path: Path
) -> None:
    settings = load_settings({"BOUNCELEDGER_DB": str(db_path), "SMTP2GO_WEBHOOK_SECRET": SECRET})
    async with make_client(settings=settings) as client:
        refused = await client.get(SUPPRESSIONS, headers=bearer(API_KEY))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "no API keys are configured: set BOUNCELEDGER_API_KEYS"
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_a_refused_webhook_says_whether_the_secret_was_missing_or_wrong(
    client: Any,
) -> None:
    missing = await post_webhook(client, _body(1), token=None)
    assert (missing.status_code, missing.json()["detail"]) == (403, "missing webhook secret")
    wrong = await post_webhook(client, _body(2), token=SECRET + "x")
    assert (wrong.status_code, wrong.json()["detail"]) == (403, "wrong webhook secret")


async def test_the_basic_password_is_everything_after_the_first_colon(client: Any) -> None:
    # a user name cannot hold a colon (RFC 7617): the password may, so the split is at
    # the first one; a credential without a colon has no password at all
    accepted = await post_webhook(client, _body(3), token=None, headers=basic("smtp2go", SECRET))
    assert accepted.status_code == 200
    colon = basic("smtp2go:extra", SECRET)  # the password is "extra:<secret>": wrong
    refused = await post_webhook(client, _body(4), token=None, headers=colon)
    assert (refused.status_code, refused.json()["detail"]) == (403, "wrong webhook secret")
    bare = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
    refused = await post_webhook(client, _body(5), token=None, headers=bare)
    assert (refused.status_code, refused.json()["detail"]) == (403, "missing webhook secret")


async def test_a_basic_credential_that_is_not_strict_base64_is_refused(client: Any) -> None:
    good = base64.b64encode(f"smtp2go:{SECRET}".encode()).decode()
    for junk in (good[:4] + "!" + good[4:], good + "?", "*" + good):
        refused = await post_webhook(
            client, _body(6), token=None, headers={"Authorization": f"Basic {junk}"}
        )
        assert refused.status_code == 403, junk
        assert refused.json()["detail"] == "missing webhook secret"


async def test_the_console_is_guarded_by_its_session_not_by_an_api_key(client: Any) -> None:
    """Its pages send a signed-out browser to the sign-in page (303), with or without an
    API key: the API-key guard leaves them to the console's own."""
    for headers in ({}, bearer(API_KEY), {"Authorization": "Bearer wrong"}):
        page = await client.get("/console", headers=headers, follow_redirects=False)
        assert page.status_code == 303, headers
        assert page.headers["location"].startswith("/console/login?next=")
    assert (await client.get("/console/login")).status_code == 200
