"""The browser tests' pieces: a live server on a loopback port, seeding it with SMTP2GO
webhooks, signing in, counting a journey's steps, and axe checks."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.settings import load_settings
from projections import Policy
from tests.api.helpers import event
from tests.conftest import SECRET
from tests.serving import free_port

CHROMIUM = Path("/usr/bin/chromium")
ENV_REQUIRED = "BOUNCELEDGER_TEST_BROWSER_REQUIRED"
ENV_SCREENSHOTS = "BOUNCELEDGER_SCREENSHOTS"
SKIP_REASON = (
    "browser tests skipped: no /usr/bin/chromium (to run them: apt-get install -y chromium)"
)
ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # Loopback only: no host name resolves (the live server is reached by its IP).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
OPERATOR = "support"
API_KEY = "support-console-key-0123456789abcdef"  # 20+ characters
WEBHOOK = "/v1/webhooks/smtp2go/events"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
TIMEOUT_MS = 10_000  # for every Playwright wait: a broken page fails fast
LOOPBACK = ("http://127.0.0.1:", "data:", "about:", "blob:")

# What the session saw, for the closing summary (conftest.pytest_terminal_summary).
JOURNEYS: list[str] = []
AXE_REPORT: dict[str, str] = {}


def required() -> bool:
    return os.environ.get(ENV_REQUIRED, "") not in ("", "0")


def screenshots_wanted() -> bool:
    return os.environ.get(ENV_SCREENSHOTS, "") not in ("", "0")


# --- the live server ---------------------------------------------------------------


class LiveServer:
    """The real app (create_app) served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, db: Path | str, policy: Policy | None = None) -> None:
        settings = load_settings(
            {
                "BOUNCELEDGER_DB": str(db),
                "SMTP2GO_WEBHOOK_SECRET": SECRET,
                "BOUNCELEDGER_API_KEYS": f"{OPERATOR}:{API_KEY}",
            }
        )
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, policy),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-live", daemon=True)
        self.http = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5.0
        )
        self.door = httpx.Client(base_url=self.base, timeout=5.0)  # webhooks: no API key

    def start(self, timeout: float = 15.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise AssertionError("the live server stopped while starting (see its log)")
            try:
                if self.http.get("/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the live server did not answer /healthz within {timeout} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.http.close()
        self.door.close()
        assert not self.thread.is_alive(), "the live server did not stop within 15 s"

    # seeding

    def webhook(self, payload: dict[str, Any] | bytes, *, expect: int = 200) -> dict[str, Any]:
        """POST one SMTP2GO webhook (a JSON event, or raw bytes); the answer's JSON."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = self.door.post(
            WEBHOOK,
            content=body,
            params={"token": SECRET},
            headers={"content-type": "application/json"},
        )
        assert response.status_code == expect, response.text
        return dict(response.json())

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the projector has folded every receipt."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.http.get("/healthz").json()
            if health["projected"] >= health["receipts"]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"projector did not catch up: {health}")
            time.sleep(0.02)

    def status(self, email: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/suppressions/{email}")
        assert response.status_code == 200, response.text
        return dict(response.json())


def hard_bounce(rcpt: str, event_id: str, **fields: Any) -> dict[str, Any]:
    message = f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
    return event("bounce", rcpt, event_id, **{"bounce": "hard", "message": message, **fields})


def soft_bounce(rcpt: str, event_id: str, **fields: Any) -> dict[str, Any]:
    message = "452 4.2.2 Mailbox full"
    return event("bounce", rcpt, event_id, **{"bounce": "soft", "message": message, **fields})


def complaint(rcpt: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return event("spam", rcpt, event_id, **{"subject": "Weekly digest", **fields})


# --- journeys ----------------------------------------------------------------------


@dataclass
class Steps:
    """What a person does in a journey: each click, typed field and key press, in order."""

    title: str
    done: list[tuple[str, str]] = field(default_factory=list)

    def click(self, locator: Any, what: str) -> None:
        locator.click()
        self.done.append(("click", what))

    def type(self, locator: Any, text: str, what: str) -> None:
        locator.fill(text)
        self.done.append(("type", what))

    def press(self, page: Any, key: str, what: str) -> None:
        page.keyboard.press(key)
        self.done.append(("key", f"{key}: {what}"))

    def keys(self, page: Any, text: str, what: str) -> None:
        page.keyboard.type(text)
        self.done.append(("type", what))

    def visit(self, page: Any, path: str, what: str) -> None:
        page.goto(path)
        self.done.append(("open", what))

    def back(self, page: Any) -> None:
        page.go_back()
        self.done.append(("click", "the browser's Back button"))

    def count(self, kind: str) -> int:
        return sum(1 for done, _ in self.done if done == kind)

    def report(self) -> str:
        """Print the steps, and keep a one-line summary for the end of the run."""
        counts = ", ".join(
            f"{self.count(kind)} {name}"
            for kind, name in (
                ("open", "URLs typed or bookmarked"),
                ("click", "clicks"),
                ("type", "typed fields"),
                ("key", "key presses"),
            )
            if self.count(kind)
        )
        line = f"{self.title}: {counts} ({len(self.done)} steps)"
        print(line)
        for number, (kind, what) in enumerate(self.done, 1):
            print(f"  {number:2}. {kind:5} {what}")
        JOURNEYS.append(line)
        return line


def sign_in(page: Any) -> None:
    """Sign in as `support` through the form."""
    page.goto("/console/login")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"signed in as {OPERATOR}").wait_for()


# --- axe ---------------------------------------------------------------------------

SEVERE = ("serious", "critical")


def axe_check(page: Any, name: str) -> None:
    """axe-core on the page as shown: no serious or critical violation (others printed)."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    lines = [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])} node(s)): {v['help']} — "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in violations
    ]
    AXE_REPORT[name] = "; ".join(lines) if lines else "no violations"
    print(f"axe {name}: " + ("\n  ".join(["", *lines]) if lines else "no violations"))
    severe = [line for v, line in zip(violations, lines, strict=True) if v["impact"] in SEVERE]
    assert not severe, f"axe on {name} ({page.url}):\n" + "\n".join(severe)


def screenshot(page: Any, name: str) -> None:
    """docs/console/NAME.png: the whole page (at the 1280x800 viewport), when
    BOUNCELEDGER_SCREENSHOTS=1."""
    if screenshots_wanted():
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True, animations="disabled")
