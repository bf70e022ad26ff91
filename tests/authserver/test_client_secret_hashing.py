"""Client secrets are stored with a salted HMAC-SHA256 (authserver/hashers.py), not with PBKDF2, and
secrets stored with PBKDF2 before still authenticate, and are then stored with the fast hasher."""

import json

import pytest
from django.contrib.auth.hashers import check_password, get_hasher, identify_hasher, make_password
from oauth2_provider.models import get_application_model

from authserver.hashers import client_secret_rehash
from tests.authserver.helpers import (
    approved_code,
    basic_auth,
)
from tests.factories import REDIRECT_URI, make_client, make_user

pytestmark = pytest.mark.django_db

FAST = "client_secret_pbkdf2_sha256"
SECRET = "s3cr3t-" + "x" * 60  # DOT's generated secrets are longer still; the tests write their own


def confidential_client(*, secret: str = SECRET, **fields):
    """A server-side client an operator created (admin or ``create_client``), with ``secret``."""
    Application = get_application_model()
    return Application.objects.create(
        name="Server app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        client_secret=secret,
        **fields,
    )


def stored_with_pbkdf2(app, secret: str = SECRET):
    """The client as a row written before CLIENT_SECRET_HASHER was set: its secret hashed with PBKDF2."""
    app.client_secret = make_password(secret, hasher="pbkdf2_sha256")
    app.hash_client_secret = True  # DOT's flag: the stored value is a hash, keep it
    app.save()
    app.refresh_from_db()
    assert identify_hasher(app.client_secret).algorithm == "pbkdf2_sha256"
    return app


def algorithm_stored(app) -> str:
    app.refresh_from_db()
    return identify_hasher(app.client_secret).algorithm


def token_request(client, client_id: str, secret: str, *, method: str):
    """The confidential client's code exchange (RFC 6749 §4.1.3), authenticated by ``method``."""
    if "_auth_user_id" not in client.session:
        client.force_login(make_user("alice"))
    code, verifier = approved_code(client, client_id)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    if method == "client_secret_basic":
        return client.post("/o/token/", data, **basic_auth(client_id, secret))
    return client.post("/o/token/", {**data, "client_id": client_id, "client_secret": secret})


AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


# --- What is stored ---------------------------------------------------------------------------


def test_a_new_confidential_clients_secret_is_stored_with_the_client_secret_hasher():
    app = confidential_client()
    assert algorithm_stored(app) == FAST
    assert app.client_secret.startswith(f"{FAST}$1$")  # one iteration: no stretching
    assert check_password(SECRET, app.client_secret)


def test_a_generated_secret_is_stored_with_the_client_secret_hasher():
    Application = get_application_model()
    app = Application(
        name="Server app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
    )
    generated = app.client_secret
    app.save()
    assert algorithm_stored(app) == FAST
    assert check_password(generated, app.client_secret)


def test_two_clients_with_one_secret_store_different_hashes():
    # A salt per hash: equal secrets are not visible as equal rows.
    assert confidential_client().client_secret != confidential_client().client_secret


def test_a_registered_confidential_clients_secret_is_stored_fast_and_authenticates(client):
    # RFC 7591 §3.2.1: the secret is in the registration answer only; the server keeps its hash.
    metadata = {
        "client_name": "Server-side agent",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    answer = client.post("/o/register/", json.dumps(metadata), content_type="application/json")
    assert answer.status_code == 201
    registered = answer.json()
    app = get_application_model().objects.get(client_id=registered["client_id"])
    assert app.client_type == "confidential"
    assert algorithm_stored(app) == FAST
    assert registered["client_secret"] not in app.client_secret

    response = token_request(client, registered["client_id"], registered["client_secret"], method="client_secret_basic")
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


def test_a_persons_password_is_still_hashed_with_pbkdf2():
    person = make_user("bob")
    assert identify_hasher(person.password).algorithm == "pbkdf2_sha256"
    assert get_hasher("default").algorithm == "pbkdf2_sha256"
    assert person.check_password("correct horse battery staple")


# --- The token endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_confidential_client_authenticates_with_its_secret(client, method):
    app = confidential_client(token_endpoint_auth_method=method)
    response = token_request(client, app.client_id, SECRET, method=method)
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_wrong_secret_is_refused_with_json_invalid_client(client, method):
    # RFC 6749 §5.2: client authentication failed: invalid_client, 401.
    app = confidential_client(token_endpoint_auth_method=method)
    response = token_request(client, app.client_id, SECRET + "x", method=method)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_secret_stored_with_pbkdf2_authenticates_and_is_then_stored_with_the_fast_hasher(client, method):
    app = stored_with_pbkdf2(confidential_client(token_endpoint_auth_method=method))
    response = token_request(client, app.client_id, SECRET, method=method)
    assert response.status_code == 200, response.content
    assert algorithm_stored(app) == FAST
    assert check_password(SECRET, app.client_secret)
    # And with the new hash too.
    assert token_request(client, app.client_id, SECRET, method=method).status_code == 200


def test_a_wrong_secret_leaves_a_pbkdf2_hash_as_it_was(client):
    app = stored_with_pbkdf2(confidential_client())
    legacy_hash = app.client_secret
    response = token_request(client, app.client_id, SECRET + "x", method="client_secret_basic")
    assert response.status_code == 401
    app.refresh_from_db()
    assert app.client_secret == legacy_hash


def test_a_public_clients_pbkdf2_hash_is_never_rehashed(client):
    # RFC 6749 §2.1: a public client has no secret to upgrade. Rows from before public clients were
    # stored without one may still hold a PBKDF2 hash; presenting its secret changes nothing.
    app = make_client()
    legacy_hash = make_password(SECRET, hasher="pbkdf2_sha256")
    get_application_model().objects.filter(pk=app.pk).update(client_secret=legacy_hash, hash_client_secret=True)
    token_request(client, app.client_id, SECRET, method="client_secret_post")
    app.refresh_from_db()
    assert app.client_secret == legacy_hash


def test_an_unhashed_secret_still_authenticates_and_stays_unhashed(client):
    # DOT's hash_client_secret=False (e.g. for HS256 ID tokens): compared in constant time, never rehashed.
    app = confidential_client(hash_client_secret=False)
    assert app.client_secret == SECRET
    response = token_request(client, app.client_id, SECRET, method="client_secret_basic")
    assert response.status_code == 200, response.content
    app.refresh_from_db()
    assert app.client_secret == SECRET


# --- The upgrade's compare-and-set -------------------------------------------------------------


def test_of_two_concurrent_upgrades_of_one_hash_only_the_first_writes():
    app = stored_with_pbkdf2(confidential_client())
    legacy_hash = app.client_secret
    assert client_secret_rehash(stored=legacy_hash, secret=SECRET) == 1
    app.refresh_from_db()
    first = app.client_secret
    assert client_secret_rehash(stored=legacy_hash, secret=SECRET) == 0
    app.refresh_from_db()
    assert app.client_secret == first
    assert identify_hasher(first).algorithm == FAST
    assert check_password(SECRET, first)


def test_an_upgrade_never_overwrites_a_secret_replaced_meanwhile():
    app = stored_with_pbkdf2(confidential_client())
    legacy_hash = app.client_secret
    app.client_secret = "a new secret the operator set " + "y" * 40
    app.save()
    assert client_secret_rehash(stored=legacy_hash, secret=SECRET) == 0
    app.refresh_from_db()
    assert check_password("a new secret the operator set " + "y" * 40, app.client_secret)
    assert not check_password(SECRET, app.client_secret)


@pytest.mark.parametrize("secret, refused", [("hunter22", True), ("x" * 31, True), ("x" * 32, False)])
def test_a_secret_typed_by_an_operator_must_be_long_enough_for_the_fast_hash(secret, refused):
    from django.core.exceptions import ValidationError

    app = get_application_model()(
        name="Typed",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
        client_secret=secret,
    )
    if refused:
        with pytest.raises(ValidationError) as problem:
            app.full_clean()
        assert "client_secret" in problem.value.message_dict
    else:
        app.full_clean()
