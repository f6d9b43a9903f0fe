"""Schemathesis against the OpenAPI schema of every non-webhook route, on a real server.

One `bounceledger serve` on loopback, seeded with suppressions of every reason, serves
the module. For each operation in /schema/openapi.json (the webhook door excepted: it
has its own fuzzing), schemathesis generates requests from the schema, sends them with
the API key, and checks: no 5xx, the status code, content type, headers and body each
as the schema documents them. Explicit calls with the seeded addresses make sure the
populated answers (not only the empty ones) are checked too.

The query parameters (the list's filters and cursor, the audit and quarantine pages'
cursors, limits, sources and times, `as_of`, `expect`) are fuzzed outside the schema as
well (second review, N8): schemathesis's negative mode sends values the schema rules
out, the out-of-range values of tests/security/test_bad_input.py are sent as
explicit cases, and the keyset cursor of a list sorted by time gets any integer — each
answered as documented, 400 for a refusal, never a 5xx.

BOUNCELEDGER_FUZZ_EXAMPLES sets the number of generated requests per operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.settings import load_settings
from projections import DEFAULT_POLICY
from tests.reliability.crashing import AUTH, SECRET, Server

EXAMPLES = int(os.environ.get("BOUNCELEDGER_FUZZ_EXAMPLES", "60")) // 2 or 1
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
WEBHOOK_PREFIX = "/v1/webhooks/"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation the app documents, webhooks excepted."""
    app = create_app(load_settings({}), DEFAULT_POLICY)  # not started: no database opened
    document = app.openapi_schema.to_schema()
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        if not path.startswith(WEBHOOK_PREFIX)
        for method in item
        if method in METHODS
    )


OPERATIONS = _operations()

SEEDED = {
    "nobody@example.org": {"event": "bounce", "bounce": "hard", "message": "550 5.1.1 unknown"},
    "annoyed@example.com": {"event": "spam"},
    "alice@example.com": {"event": "delivered"},
}


@dataclass
class Api:
    base: str
    schema: Any


def _seed(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:

        def post(body: dict[str, Any]) -> None:
            response = client.post(
                "/v1/webhooks/smtp2go/events",
                params={"token": SECRET},
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 200, response.text

        for n, (rcpt, fields) in enumerate(SEEDED.items()):
            post({"id": f"seed-{n}", "rcpt": rcpt, "time": "2026-05-04T10:15:02Z", **fields})
        for n in range(3):
            post(
                {
                    "event": "bounce",
                    "bounce": "soft",
                    "id": f"soft-{n}",
                    "rcpt": "soft@example.org",
                    "time": f"2026-05-0{n + 1}T09:00:00Z",
                }
            )
        suppressed = client.put(
            "/v1/suppressions/manual@example.net", json={"note": "asked by phone"}, headers=AUTH
        )
        assert suppressed.status_code in (200, 201), suppressed.text


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    server = Server(workdir / "ledger.db", workdir / "serve.log")
    try:
        server.wait_healthy()
        _seed(server.base)
        schema = schemathesis.openapi.from_url(
            f"{server.base}/schema/openapi.json", headers=AUTH, timeout=10
        )
        yield Api(server.base, schema)
    finally:
        server.stop()


def test_every_documented_route_is_covered() -> None:
    paths = {path for _, path in OPERATIONS}
    assert {"/v1/suppressions", "/v1/suppressions/check", "/healthz", "/readyz"} <= paths
    assert "/v1/audit/receipts/{seq}" in paths
    assert not any(path.startswith(WEBHOOK_PREFIX) for path in paths)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_to_the_schema(api: Api, method: str, path: str) -> None:
    operation = api.schema[path][method]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)

    check()


SEEDED_EMAILS = [*SEEDED, "soft@example.org", "manual@example.net", "never@example.org"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        (method, path)
        for method, path in OPERATIONS
        if method == "GET" and ("{email}" in path or "{seq}" in path or "{" not in path)
    ],
)
def test_populated_answers_conform_to_the_schema(api: Api, method: str, path: str) -> None:
    operation = api.schema[path][method]
    parameters: list[dict[str, Any]]
    if "{email}" in path:
        parameters = [{"email": email} for email in SEEDED_EMAILS]
    elif "{seq}" in path:
        parameters = [{"seq": seq} for seq in (1, 4, 7, 99)]
    else:
        parameters = [{}]
    for path_parameters in parameters:
        case = operation.Case(path_parameters=path_parameters)
        case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)


def test_check_and_operator_answers_conform_to_the_schema(api: Api) -> None:
    check = api.schema["/v1/suppressions/check"]["POST"].Case(body={"emails": SEEDED_EMAILS})
    response = check.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)
    assert {item["email"] for item in response.json()["suppressed"]} >= {"nobody@example.org"}
    for method in ("PUT", "DELETE", "PUT"):
        case = api.schema["/v1/suppressions/{email}"][method].Case(
            path_parameters={"email": "operator@example.org"}, body={"note": "schema test"}
        )
        case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)


def _integer_parameters() -> list[tuple[str, str, str, str]]:
    """(METHOD, path, location, name) of every integer parameter the schema documents."""
    app = create_app(load_settings({}), DEFAULT_POLICY)
    document = app.openapi_schema.to_schema()
    found = []
    for path, item in document["paths"].items():
        if path.startswith(WEBHOOK_PREFIX):
            continue
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if method in METHODS else []:
                if parameter.get("schema", {}).get("type") == "integer":
                    found.append((method.upper(), path, parameter["in"], parameter["name"]))
    return sorted(found)


@pytest.mark.parametrize(("method", "path", "location", "name"), _integer_parameters())
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64 + 5])
def test_integers_past_64_bits_conform_to_the_schema(
    api: Api, method: str, path: str, location: str, name: str, value: int
) -> None:
    """Integers the database cannot hold (the schema sets no bound) are answered as
    documented, never with a 500."""
    operation = api.schema[path][method]
    if location == "path":
        case = operation.Case(path_parameters={name: value})
    else:
        parameters = {"seq": 1, "qid": 1} if "{seq}" in path or "{qid}" in path else {}
        case = operation.Case(query={name: value}, path_parameters=parameters or None)
    case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)


# -- query parameters outside the schema (second review, N8) ----------------------------


def _query_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every GET operation that takes query parameters."""
    app = create_app(load_settings({}), DEFAULT_POLICY)
    document = app.openapi_schema.to_schema()
    return sorted(
        ("GET", path)
        for path, item in document["paths"].items()
        if not path.startswith(WEBHOOK_PREFIX)
        and any(p["in"] == "query" for p in item.get("get", {}).get("parameters", []))
    )


QUERY_OPERATIONS = _query_operations()
NEGATIVE_EXAMPLES = max(EXAMPLES // 3, 1)
PATH_PARAMETERS = {"{email}": {"email": "nobody@example.org"}, "{seq}": {"seq": 1}}


def test_the_query_operations_are_the_list_audit_and_quarantine_ones() -> None:
    assert {"/v1/suppressions", "/v1/audit/receipts", "/v1/quarantine"} <= {
        path for _, path in QUERY_OPERATIONS
    }


@pytest.mark.parametrize(("method", "path"), QUERY_OPERATIONS)
def test_query_values_the_schema_rules_out_are_refused_as_documented(
    api: Api, method: str, path: str
) -> None:
    operation = api.schema[path][method]
    fixed = next((v for k, v in PATH_PARAMETERS.items() if k in path), None)

    @settings(
        max_examples=NEGATIVE_EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)

    check()


BIG = ["9223372036854775808", "99999999999999999999", "-9223372036854775809"]
OUT_OF_RANGE: dict[str, dict[str, list[str]]] = {
    "/v1/suppressions": {
        "after": ["9999999999999999999/x", *(f"{n}/a@example.org" for n in BIG), "abc/x"],
        "limit": ["0", "10001", *BIG],
        "since": ["99999-01-01", "0000-00-00", "2026-02-30"],
        "until": ["99999-01-01", "0000-00-00"],
        "q": ["x" * 321, "a\x00"],
    },
    "/v1/suppressions/{email}": {"as_of": ["99999-01-01", "0000-00-00", *BIG, "1e400"]},
    "/v1/audit/receipts": {
        "after": ["-1", *BIG],
        "limit": ["0", "1001", *BIG],
        "source": ["\x00", "a@example.org", "x" * 81],
        "since": ["99999-01-01", "0000-00-00", *BIG],
        "until": ["99999-01-01", "0000-00-00", *BIG],
    },
    "/v1/quarantine": {"after": ["-1", *BIG], "limit": ["0", "1001", *BIG]},
}


@pytest.mark.parametrize("path", sorted(OUT_OF_RANGE))
def test_out_of_range_query_values_are_documented_400s(api: Api, path: str) -> None:
    operation = api.schema[path]["GET"]
    fixed = next((v for k, v in PATH_PARAMETERS.items() if k in path), None)
    for name, values in OUT_OF_RANGE[path].items():
        for value in values:
            query = {name: value}
            if path == "/v1/suppressions" and name == "after":
                query["sort"] = "since"
            case = operation.Case(query=query, path_parameters=fixed)
            response = case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)
            assert response.status_code == 400, (path, query, response.text[:300])


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    number=st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    sort=st.sampled_from(["since", "-since"]),
    email=st.sampled_from(["", "x", "nobody@example.org", "a/b%c@example.org"]),
)
def test_any_cursor_number_pages_or_is_refused(
    api: Api, number: int, sort: str, email: str
) -> None:
    operation = api.schema["/v1/suppressions"]["GET"]
    case = operation.Case(query={"sort": sort, "after": f"{number}/{email}", "limit": 2})
    response = case.call_and_validate(base_url=api.base, headers=AUTH, checks=CHECKS)
    in_range = -(2**63) <= number < 2**63
    assert response.status_code == (200 if in_range else 400), response.text[:300]
