"""No token, code or secret in a log line, even when a client puts one in a URL.

This server never takes credentials from a query string (RFC 6750 §2.3 and RFC 9700 §2.5 for
access tokens, RFC 7662 §2.1 for introspection: POST only), but a client may still send them
there, and the access log writes every request's path and query. ``SecretsRedacted`` replaces the
value of every credential-carrying query parameter in a log record's message and arguments, so a
refused request leaves no usable secret behind. Django's handlers get it from ``LOGGING``;
uvicorn's access logger, configured by uvicorn itself, gets it from :func:`access_log_redact`.
"""

import logging
from urllib.parse import unquote_plus

# Query parameters whose value is a credential (RFC 6749, 6750, 7009, 7523, 7591, 7592, 7636,
# 7662, 8693, OpenID Connect Core): their value never reaches a log.
SECRET_PARAMETERS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "id_token_hint",
        "token",
        "code",
        "code_verifier",
        "client_secret",
        "client_assertion",
        "assertion",
        "registration_access_token",
        "subject_token",
        "actor_token",
        "password",
    }
)
REDACTED = "[redacted]"


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            part = name + "=" + REDACTED
        parts.append(part)
    return "&".join(parts)


def secrets_redact(text: str) -> str:
    """``text`` with the value of every credential parameter of a URL query in it replaced."""
    if "?" not in text or "=" not in text:
        return text
    head, _, rest = text.partition("?")
    query, space, tail = rest.partition(" ")  # a log line goes on after the URL ("... HTTP/1.1")
    return head + "?" + _redact_query(query) + space + (secrets_redact(tail) if tail else "")


class SecretsRedacted(logging.Filter):
    """A logging filter that passes every record, with credentials in URLs redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = secrets_redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(secrets_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                key: secrets_redact(arg) if isinstance(arg, str) else arg for key, arg in record.args.items()
            }
        return True


def access_log_redact() -> None:
    """Redact uvicorn's access log (idempotent: one filter however often the application is built)."""
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, SecretsRedacted) for existing in access_log.filters):
        access_log.addFilter(SecretsRedacted())
