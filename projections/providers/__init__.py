"""The provider registry: source name -> module with `decode`, `facts`, `DEFAULT_MAPPING`."""

from __future__ import annotations

from projections.providers import mailgun, mailtura, postmark, resend, sendgrid, ses, smtp2go
from projections.providers.events import Provider, ProviderEvent

PROVIDERS: dict[str, Provider] = {
    smtp2go.NAME: smtp2go,
    ses.NAME: ses,
    sendgrid.NAME: sendgrid,
    mailgun.NAME: mailgun,
    resend.NAME: resend,
    postmark.NAME: postmark,
    mailtura.NAME: mailtura,
}

__all__ = ["PROVIDERS", "Provider", "ProviderEvent"]
