"""This server as the IdP (RFC 8693 token exchange of an ID token for an ID-JAG) as an attacker meets
it: a third-party app reading, in the ID-JAG, what the person did not let it know; an ID token kept
after the grant it came with was revoked; claims of any JSON type in a token signed with our key."""

import json
import uuid

import jwt
import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_id_token_model
from oauth2_provider.settings import oauth2_settings

from authserver.models import Application, AssertionAudience, AuditEvent, ConsentGrant
from tests.authserver.helpers import (
    ISSUER,
    authorize_url,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
)
from tests.factories import make_client
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

SECRET = "third-party-chat-secret-" + "x" * 30
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
WIKI = "https://wiki.acme.example"
# What an ID-JAG may say about the person, by the scope that releases it (OpenID Connect Core §5.4).
PROFILE_CLAIMS = {"name", "given_name", "family_name", "username", "preferred_username"}
EMAIL_CLAIMS = {"email", "email_verified"}


@pytest.fixture
def chat_app():
    """A third-party app (consent page), confidential, that may get ID-JAGs for the company wiki."""
    app = make_client(
        name="Third-party chat",
        client_type=Application.CLIENT_CONFIDENTIAL,
        client_secret=SECRET,
        token_endpoint_auth_method=Application.AuthMethod.CLIENT_SECRET_POST,
    )
    AssertionAudience.objects.create(
        name="Acme wiki",
        client=app,
        audience=WIKI,
        resource=WIKI + "/mcp",
        remote_client_id="wiki-client-7",
        allowed_scope="mcp profile",
    )
    return app


def code_approved(browser, app, *, scope: str, untick: tuple[str, ...] = ()) -> tuple[str, str]:
    """The person, on the consent page, allows ``scope`` but the boxes in ``untick``: a code, its verifier."""
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, scope=scope)
    answer = browser.get(url)
    if answer.status_code == 200:  # a third-party app: the consent page, unless the answer is remembered
        answer = browser.post(url, consent_answer(answer, untick=untick))
    return redirect_params(answer)["code"], verifier


def tokens_for(browser, app, *, scope: str = "openid mcp email profile", untick=(), token_scope=None) -> dict:
    """The app's tokens once the person allowed ``scope`` but ``untick``; ``token_scope``: a ``scope``
    parameter the app adds to its token request."""
    code, verifier = code_approved(browser, app, scope=scope, untick=untick)
    extra = {"scope": token_scope} if token_scope else {}
    answer = exchange_code(Client(), app, code, verifier, client_secret=SECRET, **extra)
    assert answer.status_code == 200, answer.content
    return answer.json()


def refreshed(app, refresh_token: str):
    request = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return Client().post("/o/token/", {**request, "client_id": app.client_id, "client_secret": SECRET})


def exchange(app, id_token: str, **data):
    """The app's RFC 8693 request for an ID-JAG for the wiki (``scope`` mcp unless ``data`` says; None: left out)."""
    request = {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "subject_token": id_token,
        "audience": WIKI,
        "scope": "mcp",
        "client_id": app.client_id,
        "client_secret": SECRET,
        **data,
    }
    return Client().post("/o/token/", {name: value for name, value in request.items() if value is not None})


def id_jag_claims(answer) -> dict:
    """What the app reads in the ID-JAG it got (it holds it; no key needed to read a JWT)."""
    assert answer.status_code == 200, answer.content
    return jwt.decode(answer.json()["access_token"], options={"verify_signature": False})


def assert_refused(answer) -> None:
    body = assert_json_error(answer, 400, "invalid_grant")
    assert "expired or was revoked" in body["error_description"]


# --- Item 7: an ID-JAG says no more about the person than they let the app know --------------------


def test_oidc_core_s5_4_email_unticked_on_consent_means_no_email_or_name_in_the_id_jag(signed_in, chat_app):
    tokens = tokens_for(signed_in, chat_app, untick=("email", "profile"))
    assert tokens["scope"] == "openid mcp"
    claims = id_jag_claims(exchange(chat_app, tokens["id_token"]))
    assert not (EMAIL_CLAIMS | PROFILE_CLAIMS) & claims.keys(), claims
    assert claims["sub"] == str(ConsentGrant.objects.get().user.pk)


def test_oidc_core_s5_4_a_scope_added_to_the_token_request_releases_nothing_more(signed_in, chat_app):
    # DOT stores the ID token row's `scope` from the token request's `scope` parameter, which the
    # app writes; what the person granted is the access token's scope.
    tokens = tokens_for(signed_in, chat_app, untick=("email", "profile"), token_scope="openid mcp email profile")
    assert get_id_token_model().objects.get().scope == "openid mcp email profile"
    claims = id_jag_claims(exchange(chat_app, tokens["id_token"]))
    assert not (EMAIL_CLAIMS | PROFILE_CLAIMS) & claims.keys(), claims


def test_oidc_core_s5_4_email_ticked_releases_the_address_never_claimed_verified_s5_1(signed_in, chat_app):
    tokens = tokens_for(signed_in, chat_app, untick=("profile",))
    claims = id_jag_claims(exchange(chat_app, tokens["id_token"]))
    assert claims["email"] == "alice@example.com"
    # This site does not verify addresses: an ID-JAG never asserts it did (OpenID Connect Core §5.1).
    assert claims["email_verified"] is False
    assert not PROFILE_CLAIMS & claims.keys(), claims


def test_oidc_core_s5_4_profile_ticked_releases_the_name_and_not_the_email(signed_in, chat_app):
    tokens = tokens_for(signed_in, chat_app, untick=("email",))
    claims = id_jag_claims(exchange(chat_app, tokens["id_token"]))
    assert claims["name"] == "Alice Liddell" and claims["preferred_username"] == "alice"
    assert not EMAIL_CLAIMS & claims.keys(), claims


def test_rfc8693_s2_1_an_audience_with_no_allowed_scopes_gets_no_id_jag_at_all(signed_in, chat_app):
    # The operator left "scopes it may carry" empty: that allows none, not whatever the app asks for.
    AssertionAudience.objects.update(allowed_scope="")
    id_token = tokens_for(signed_in, chat_app)["id_token"]
    for asked in ("admin:everything", "", None):
        body = assert_json_error(exchange(chat_app, id_token, scope=asked), 400, "invalid_scope")
        assert "allowed" in body["error_description"]
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_ISSUED).exists()


def test_rfc8693_s2_1_an_id_jag_carries_only_allowed_scopes_and_never_none(signed_in, chat_app):
    id_token = tokens_for(signed_in, chat_app)["id_token"]
    answer = exchange(chat_app, id_token, scope="mcp admin:everything")
    assert answer.json()["scope"] == "mcp" and id_jag_claims(answer)["scope"] == "mcp"
    for none_asked in (None, ""):
        assert id_jag_claims(exchange(chat_app, id_token, scope=none_asked))["scope"] == "mcp profile"  # all allowed
    # Nothing asked for is allowed: refused, not an ID-JAG with no scope (the other server's default).
    assert_json_error(exchange(chat_app, id_token, scope="admin:everything"), 400, "invalid_scope")


# --- Item 8: what revokes a grant's tokens revokes its ID tokens -----------------------------------


def test_rfc6749_s4_1_2_a_replayed_code_stops_the_id_token_it_got(signed_in, chat_app):
    code, verifier = code_approved(signed_in, chat_app, scope="openid mcp email profile")
    tokens = exchange_code(Client(), chat_app, code, verifier, client_secret=SECRET).json()
    assert exchange(chat_app, tokens["id_token"]).status_code == 200

    replay = exchange_code(Client(), chat_app, code, verifier, client_secret=SECRET)

    assert_json_error(replay, 400, "invalid_grant")
    assert_refused(exchange(chat_app, tokens["id_token"]))
    assert not get_id_token_model().objects.exists()


def test_rfc9700_s4_14_2_a_reused_refresh_token_stops_every_id_token_of_the_family(signed_in, chat_app):
    first = tokens_for(signed_in, chat_app)
    rotated = refreshed(chat_app, first["refresh_token"]).json()
    # A refresh issues a new ID token, which the app may exchange.
    assert exchange(chat_app, rotated["id_token"]).status_code == 200

    assert_json_error(refreshed(chat_app, first["refresh_token"]), 400, "invalid_grant")

    assert_refused(exchange(chat_app, rotated["id_token"]))
    assert_refused(exchange(chat_app, first["id_token"]))
    assert not get_id_token_model().objects.filter(access_token__isnull=False).exists()


def test_rfc7009_s2_1_revoking_the_access_token_stops_the_id_token_issued_with_it(signed_in, chat_app):
    # Decision: the app revoking its access token (or refresh token) ends the grant for ID-JAGs too.
    for hint in ("access_token", "refresh_token"):
        tokens = tokens_for(signed_in, chat_app)
        assert exchange(chat_app, tokens["id_token"]).status_code == 200
        revoked = Client().post(
            "/o/revoke_token/",
            {"token": tokens[hint], "client_id": chat_app.client_id, "client_secret": SECRET},
        )
        assert revoked.status_code == 200
        assert_refused(exchange(chat_app, tokens["id_token"]))


def test_rfc7009_s2_1_an_operator_revoking_the_access_token_in_the_admin_stops_its_id_token(
    signed_in, chat_app, operator
):
    tokens = tokens_for(signed_in, chat_app)
    changelist = operator.get("/admin/authserver/accesstokenrecord/")
    selected = [row.pk for row in changelist.context["cl"].result_list]
    assert len(selected) == 1
    action = {"action": "revoke_tokens", "_selected_action": selected}  # DOT's "Revoke selected access tokens"
    assert operator.post("/admin/authserver/accesstokenrecord/", action).status_code == 302
    assert_refused(exchange(chat_app, tokens["id_token"]))


@pytest.mark.parametrize("how", ["connected apps revoke", "account deactivated"])
def test_rfc7009_s2_2_ending_the_persons_grant_stops_its_id_tokens(signed_in, chat_app, alice, how):
    # These paths (authserver.revocation.credentials_revoke) already deleted the ID tokens; kept so they stay so.
    tokens = tokens_for(signed_in, chat_app)
    if how == "connected apps revoke":
        grant = ConsentGrant.objects.get(user=alice, application=chat_app)
        assert signed_in.post(f"/accounts/connected-apps/{grant.pk}/revoke/").status_code == 302
    else:
        alice.is_active = False
        alice.save()
        alice.is_active = True  # and back: the ID token stays revoked
        alice.save()
    assert_refused(exchange(chat_app, tokens["id_token"]))


# --- Any JSON type in a token signed with this server's own key: a JSON 400, never a 500 ----------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
CLAIM_NAMES = ["sub", "aud", "exp", "jti", "iss", "iat", "nbf", "auth_time", "azp", "at_hash"]


@pytest.fixture
def live_id_token(client, alice, chat_app) -> str:
    client.force_login(alice)
    return tokens_for(client, chat_app)["id_token"]


@pytest.fixture
def live_id_token_claims(live_id_token) -> dict:
    return jwt.decode(live_id_token, options={"verify_signature": False})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.dictionaries(st.sampled_from(CLAIM_NAMES), JSON_VALUES, min_size=1, max_size=4))
@example(overrides={"jti": "not-a-uuid"})
@example(overrides={"jti": str(uuid.uuid4())})
@example(overrides={"jti": "0" * 1000})
def test_rfc7519_s4_1_any_json_claim_in_an_id_token_signed_with_our_key_gets_json_never_a_500(
    chat_app, live_id_token_claims, overrides
):
    claims = {**live_id_token_claims, **overrides}
    # Signed as JWS (RFC 7515) of any JSON: PyJWT's jwt.encode refuses some of these claims itself.
    signed = jwt.PyJWS().encode(json.dumps(claims).encode(), oauth2_settings.OIDC_RSA_PRIVATE_KEY, algorithm="RS256")
    answer = exchange(chat_app, signed)
    assert answer["Content-Type"].startswith("application/json"), answer.content[:200]
    assert answer.status_code in (200, 400), answer.content[:300]
    if answer.status_code == 400:
        assert json.loads(answer.content)["error"] == "invalid_grant"
    else:  # still a live ID token of alice's, for this app, with its own jti
        assert claims["jti"] == live_id_token_claims["jti"] and claims["iss"] == ISSUER


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parameter=st.sampled_from(["audience", "resource", "scope"]), value=st.text(max_size=300))
@example(parameter="audience", value="https://wiki.acme.example\x00")
@example(parameter="resource", value="https://wiki.acme.example/mcp\x00")
def test_rfc8693_s2_1_any_audience_resource_or_scope_text_gets_json_never_a_500(
    chat_app, live_id_token, parameter, value
):
    answer = exchange(chat_app, live_id_token, **{parameter: value})
    assert answer["Content-Type"].startswith("application/json"), answer.content[:200]
    assert answer.status_code in (200, 400), answer.content[:300]
