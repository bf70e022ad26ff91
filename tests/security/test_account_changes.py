"""A person whose account was deactivated, whose password changed, or whom an operator signed out
everywhere keeps no access through the agents they connected: the tokens are credentials as much as
the sessions Django ends."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client
from oauth2_provider.models import get_refresh_token_model

from authserver.models import AuditEvent
from tests.authserver.helpers import (
    authorize_url,
    basic_auth,
    connect,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
    refresh,
)
from tests.conftest import PASSWORD
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server, make_user
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(signed_in, app):
    """What Alice's agent holds after she connected it (scope `openid` too, for userinfo)."""
    return connect(signed_in, app, scope="mcp profile openid")


def userinfo(access_token):
    return Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def introspection(access_token) -> dict:
    gateway = make_resource_server()
    credentials = basic_auth(gateway.client_id, RESOURCE_SERVER_SECRET)
    return Client().post("/o/introspect/", {"token": access_token}, **credentials).json()


def assert_no_access(tokens, app):
    # RFC 6750 §3.1: userinfo refuses the token; RFC 7662 §2.2: introspection says inactive;
    # RFC 6749 §5.2: the refresh token gets nothing.
    assert_json_error(userinfo(tokens["access_token"]), 401, "invalid_token")
    assert introspection(tokens["access_token"]) == {"active": False}
    assert_json_error(refresh(Client(), app, tokens["refresh_token"]), 400, "invalid_grant")


def test_a_deactivated_persons_tokens_stop_working_everywhere_at_once(tokens, app, alice):
    assert userinfo(tokens["access_token"]).status_code == 200
    alice.is_active = False
    alice.save()
    assert_no_access(tokens, app)
    # And they are revoked, so re-activating the account does not bring the agents back.
    assert not get_refresh_token_model().objects.filter(user=alice, revoked=None).exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_REVOKED, user=alice).exists()


def test_a_person_deactivated_by_a_bulk_update_gets_nothing_either(tokens, app, alice):
    # `update()` saves no model and sends no signal: the rule holds where each token is used.
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert_no_access(tokens, app)


def test_a_deactivated_persons_authorization_code_gets_invalid_grant_rfc6749_5_2(signed_in, app, alice):
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge)
    page = signed_in.get(url)
    code = redirect_params(signed_in.post(url, consent_answer(page)))["code"]
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert_json_error(exchange_code(Client(), app, code, verifier), 400, "invalid_grant")


def test_a_password_change_revokes_every_token_of_the_person(tokens, app, alice):
    alice.set_password("a new and better passphrase")
    alice.save()
    assert_no_access(tokens, app)
    revoked = AuditEvent.objects.get(kind=AuditEvent.Kind.TOKEN_REVOKED, user=alice)
    assert revoked.detail["reason"] == "password changed"


def test_an_operator_setting_a_new_password_in_the_admin_revokes_the_persons_tokens(tokens, app, alice, operator):
    response = operator.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": "another long passphrase 42", "password2": "another long passphrase 42"},
    )
    assert response.status_code == 302, response.content[:500]
    assert_no_access(tokens, app)


def test_a_stored_hash_upgraded_at_sign_in_is_not_a_password_change(tokens, app, alice):
    # Django re-hashes a password stored with an older hasher when the person signs in: their
    # password did not change, and their agents keep working.
    get_user_model().objects.filter(pk=alice.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha1"))
    signing_in = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert signing_in.status_code == 302
    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$")
    assert userinfo(tokens["access_token"]).status_code == 200


def test_sign_out_everywhere_ends_sessions_and_revokes_tokens(tokens, app, alice, operator):
    browser = Client()
    browser.force_login(alice)
    assert browser.get("/accounts/connected-apps/").status_code == 200
    bob_browser = Client()
    bob_browser.force_login(make_user("bob"))

    response = operator.post(
        "/admin/auth/user/", {"action": "sign_out_everywhere", "_selected_action": [alice.pk]}, follow=True
    )
    assert b"1 session(s) ended" in response.content or b"2 session(s) ended" in response.content

    assert browser.get("/accounts/connected-apps/").status_code == 302  # sent to sign in again
    assert bob_browser.get("/accounts/connected-apps/").status_code == 200  # nobody else is
    assert_no_access(tokens, app)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE, user=alice).exists()


def test_a_token_that_acts_for_nobody_reads_no_userinfo_rfc6750_3_1():
    # A client-credentials token (an operator's service client) has no person to describe.
    nobodys = make_access_token(None, make_client(), scope="openid profile", resource=[])
    assert_json_error(userinfo(nobodys), 401, "invalid_token")
