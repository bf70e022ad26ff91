"""Authorization codes as an attacker meets them: stolen from the database, or replayed after the client
redeemed them (RFC 6749 §4.1.2)."""

import hashlib

import pytest
from django.test import Client
from oauth2_provider.models import get_grant_model, get_refresh_token_model

from authserver.models import AuditEvent
from live.paths import MCP_PATH
from tests.authserver.helpers import (
    approved_code,
    exchange_code,
    refresh,
)
from tests.factories import make_client
from tests.mcpapp.helpers import HEADERS, INITIALIZE, run_app
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db(transaction=True)  # the MCP endpoint reads tokens from its own threads


def mcp_status(access_token: str) -> int:
    headers = {**HEADERS, "Authorization": f"Bearer {access_token}"}
    return run_app(lambda http: http.post(MCP_PATH, json=INITIALIZE, headers=headers)).status_code


def test_a_stolen_database_holds_no_usable_authorization_code(signed_in, app):
    code, _verifier = approved_code(signed_in, app)
    stored = get_grant_model().objects.get(application=app)
    # Stored as its SHA-256, like tokens (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE): the row cannot be redeemed.
    assert stored.code == hashlib.sha256(code.encode()).hexdigest()
    assert not get_grant_model().objects.filter(code=code).exists()
    assert_json_error(exchange_code(Client(), app, stored.code, _verifier), 400, "invalid_grant")


def test_replaying_a_redeemed_code_revokes_the_tokens_it_got_rfc6749_4_1_2(signed_in, app):
    code, verifier = approved_code(signed_in, app)
    first = exchange_code(Client(), app, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert mcp_status(tokens["access_token"]) == 200

    replay = exchange_code(Client(), app, code, verifier)

    assert_json_error(replay, 400, "invalid_grant")
    # RFC 6749 §4.1.2: "SHOULD revoke (when possible) all tokens previously issued based on that code".
    assert mcp_status(tokens["access_token"]) == 401
    assert_json_error(refresh(Client(), app, tokens["refresh_token"]), 400, "invalid_grant")
    assert not get_refresh_token_model().objects.filter(application=app, revoked=None).exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CODE_REPLAY_DETECTED)
    assert event.application == app and event.username == "alice"


def test_replaying_a_code_after_refreshing_revokes_the_refreshed_tokens_too_rfc6749_4_1_2(signed_in, app):
    code, verifier = approved_code(signed_in, app)
    tokens = exchange_code(Client(), app, code, verifier).json()
    rotated = refresh(Client(), app, tokens["refresh_token"]).json()

    assert_json_error(exchange_code(Client(), app, code, verifier), 400, "invalid_grant")

    assert mcp_status(rotated["access_token"]) == 401
    assert_json_error(refresh(Client(), app, rotated["refresh_token"]), 400, "invalid_grant")


def test_a_code_this_server_never_issued_revokes_nothing(signed_in, app):
    code, verifier = approved_code(signed_in, app)
    tokens = exchange_code(Client(), app, code, verifier).json()
    assert_json_error(exchange_code(Client(), app, "made-up-code", verifier), 400, "invalid_grant")
    assert mcp_status(tokens["access_token"]) == 200
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CODE_REPLAY_DETECTED).exists()


def test_another_clients_replay_of_a_code_revokes_nothing_of_its_owner(signed_in, app):
    # A code is bound to its client (RFC 6749 §4.1.3): another client presenting it is refused, and
    # cannot use the refusal to revoke the owner's tokens.
    code, verifier = approved_code(signed_in, app)
    tokens = exchange_code(Client(), app, code, verifier).json()
    assert_json_error(exchange_code(Client(), make_client(name="Other"), code, verifier), 400, "invalid_grant")
    assert mcp_status(tokens["access_token"]) == 200
