"""A code or a refresh token presented by two requests at once, replayed in-process step by step.

Each test makes a second request at the moment a concurrent one would strike (between another
request's validation and its storage, or between its storage and its answer), so that the
interleaving a multi-worker server meets only now and then happens every time. The races
themselves, across real worker processes, are in tests/e2e/test_concurrency.py.

Transactions are real (``transaction=True``): DOT's token transaction commits or rolls back as in
production.
"""

from unittest import mock

import pytest
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver.dot.validator import MCPOAuth2Validator
from authserver.models import AuditEvent
from live.paths import MCP_PATH
from tests.authserver.helpers import (
    approved_code,
    exchange_code,
    refresh,
)
from tests.mcpapp.helpers import HEADERS, INITIALIZE, run_app

pytestmark = pytest.mark.django_db(transaction=True)


def once_after(method: str, competitor):
    """Patch ``MCPOAuth2Validator.<method>`` so that the first call, once DOT's own answer is in,
    lets ``competitor()`` (another request, as another worker would make it) run to completion."""
    original = getattr(MCPOAuth2Validator, method)
    started, done = [], []

    def patched(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not started:  # the competitor's own call of the method goes straight through
            started.append(True)
            done.append(competitor())
        return result

    return mock.patch.object(MCPOAuth2Validator, method, patched), done


def assert_invalid_grant(response):
    # RFC 6749 §5.2, as JSON: what the client's OAuth library parses.
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_grant"


def mcp_accepts(token: str) -> bool:
    """Whether the MCP endpoint lets ``token`` in."""
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    status = run_app(lambda http: http.post(MCP_PATH, json=INITIALIZE, headers=headers)).status_code
    assert status in (200, 401)
    return status == 200


def user_token_counts(app) -> tuple[int, int]:
    access = get_access_token_model().objects.filter(application=app).exclude(user=None).count()
    return access, get_refresh_token_model().objects.filter(application=app).count()


@pytest.mark.parametrize(
    "moment",
    [
        # The other request finishes between DOT's reading of the grant and of its PKCE challenge.
        "validate_code",
        # The other request redeems the code after this one has checked it, before this one stores.
        "confirm_redirect_uri",
    ],
)
def test_a_code_redeemed_meanwhile_by_another_request_is_refused_stores_nothing_and_revokes_the_first_set_rfc6749_4_1_2(
    signed_in, app, moment
):
    code, verifier = approved_code(signed_in, app)
    patch, other = once_after(moment, lambda: exchange_code(Client(), app, code, verifier))
    with patch:
        this = exchange_code(Client(), app, code, verifier)

    (winner,) = other
    assert winner.status_code == 200
    # RFC 6749 §4.1.2: the code is used once; the loser is refused (not a 500) and left nothing behind...
    assert_invalid_grant(this)
    assert user_token_counts(app) == (1, 1)
    # ...and what the code got is revoked: the server cannot tell the client from a thief racing it.
    assert not mcp_accepts(winner.json()["access_token"])
    assert_invalid_grant(refresh(Client(), app, winner.json()["refresh_token"]))
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CODE_REPLAY_DETECTED, application=app).exists()


def refresh_raced(signed_in, app, *, after: str):
    """A refresh, and the same refresh token presented by another request right after this one's
    validator step ``after``; returns both answers (this one's, the other's)."""
    code, verifier = approved_code(signed_in, app)
    first = exchange_code(signed_in, app, code, verifier).json()
    patch, other = once_after(after, lambda: refresh(Client(), app, first["refresh_token"]))
    with patch:
        this = refresh(Client(), app, first["refresh_token"])
    (others,) = other
    return this, others


def test_a_refresh_token_rotated_by_another_request_after_this_one_checked_it_is_reuse(signed_in, app):
    # The other request rotates the token after this one has validated it, before this one stores.
    this, winner = refresh_raced(signed_in, app, after="validate_refresh_token")
    assert winner.status_code == 200
    assert_invalid_grant(this)
    # RFC 9700 §4.14.2: a second presentation, even a concurrent one, revokes the family: the
    # pair the other request got is refused too.
    assert_invalid_grant(refresh(Client(), app, winner.json()["refresh_token"]))
    assert not mcp_accepts(winner.json()["access_token"])
    assert not get_refresh_token_model().objects.filter(application=app, revoked=None).exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED, application=app).exists()


def test_a_refresh_still_being_answered_when_a_replay_revokes_its_family_is_answered(signed_in, app):
    # The replay lands after this refresh committed its new pair, before DOT's token view reads
    # that pair back: the revocation must not turn this answer into a 500.
    this, replay = refresh_raced(signed_in, app, after="save_bearer_token")
    assert_invalid_grant(replay)
    assert this.status_code == 200
    # What it answered is already revoked with the family (RFC 9700 §4.14.2).
    assert_invalid_grant(refresh(Client(), app, this.json()["refresh_token"]))
    assert not mcp_accepts(this.json()["access_token"])
