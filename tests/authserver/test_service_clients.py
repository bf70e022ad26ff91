"""Service clients (MCP client-credentials extension) and private_key_jwt (RFC 7523 §2.2 / §3) at the
token, revocation and introspection endpoints."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver.models import Application, AuditEvent
from authserver.service_clients import service_client_create
from live.keys import KeyPair, assertion_claims, hmac_signed_with, unsigned
from live.paths import MCP_PATH
from tests.authserver.helpers import ISSUER, KeysAt, basic_auth, register, stored_access_token
from tests.factories import make_client, make_resource_server

pytestmark = pytest.mark.django_db

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_ENDPOINT = ISSUER + "/o/token/"


def client_credentials(client, *, headers=None, **data):
    return client.post("/o/token/", {"grant_type": "client_credentials", **data}, **(headers or {}))


def with_assertion(key: KeyPair, service: Application, *, aud: str = ISSUER, **claims) -> dict:
    signed = key.sign(assertion_claims(iss=service.client_id, sub=service.client_id, aud=aud, **claims))
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


@pytest.fixture
def key():
    return KeyPair.make("RS256")


@pytest.fixture
def keyed_service(key):
    service, _ = service_client_create(name="Nightly report", scopes=["mcp", "profile"], jwks=key.jwks)
    return service


def test_create_service_client_command_prints_the_secret_once_and_stores_its_hash(client):
    out = io.StringIO()
    call_command("create_service_client", "CI job", "--scope", "mcp", "--scope", "profile", stdout=out)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line and "_" in line[:14])
    service = Application.objects.get(client_id=lines["client_id"])
    assert service.is_service and service.user.username == "service-ci-job"
    assert not service.user.has_usable_password()  # a service user never signs in
    assert lines["client_secret"] not in service.client_secret  # stored hashed
    answer = client_credentials(client, headers=basic_auth(service.client_id, lines["client_secret"]))
    assert answer.status_code == 200, answer.content


def test_create_service_client_command_with_a_key_file_makes_a_private_key_jwt_client(client, tmp_path, key):
    keys = tmp_path / "bot.jwks.json"
    keys.write_text(json.dumps(key.jwks))
    out = io.StringIO()
    call_command("create_service_client", "Deploy bot", "--scope", "mcp", "--jwks-file", str(keys), stdout=out)
    assert "client_secret" not in out.getvalue() and "private_key_jwt" in out.getvalue()
    service = Application.objects.get(name="Deploy bot")
    assert client_credentials(client, **with_assertion(key, service)).status_code == 200


def test_client_credentials_token_is_resource_bound_and_has_no_refresh_token_rfc6749_sec4_4_3(client):
    service, secret = service_client_create(name="Backup agent", scopes=["mcp", "profile"])
    answer = client_credentials(client, headers=basic_auth(service.client_id, secret))
    body = answer.json()
    assert answer.status_code == 200 and "refresh_token" not in body
    assert body["scope"] == "mcp profile"  # no scope asked: every scope it may get
    row = stored_access_token(body["access_token"])
    assert row.user == service.user  # acts as its service user
    assert row.resource == [ISSUER + MCP_PATH, ISSUER + "/star/sse"]  # RFC 8707 §2: never "anywhere"
    issued = AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_ISSUED).latest("pk")
    assert issued.username == service.user.username and issued.client_id == service.client_id


def test_client_credentials_for_a_named_resource_binds_only_it_rfc8707_sec2(client):
    service, secret = service_client_create(name="Backup agent", scopes=["mcp"])
    answer = client_credentials(client, headers=basic_auth(service.client_id, secret), resource=ISSUER + MCP_PATH)
    assert stored_access_token(answer.json()["access_token"]).resource == [ISSUER + MCP_PATH]


def test_client_credentials_for_another_resource_is_invalid_target_rfc8707_sec2(client):
    service, secret = service_client_create(name="Backup agent", scopes=["mcp"])
    answer = client_credentials(
        client, headers=basic_auth(service.client_id, secret), resource="https://elsewhere.example/mcp"
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_target"


def test_client_credentials_beyond_its_scopes_is_invalid_scope_rfc6749_sec5_2(client):
    service, secret = service_client_create(name="Backup agent", scopes=["mcp"])
    answer = client_credentials(client, headers=basic_auth(service.client_id, secret), scope="mcp notes:write")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"


def test_self_registered_client_asking_for_client_credentials_is_unauthorized_client_rfc6749_sec5_2(client):
    registered = register(
        client,
        {
            "client_name": "Sneaky",
            "redirect_uris": ["https://sneaky.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    ).json()
    answer = client_credentials(client, headers=basic_auth(registered["client_id"], registered["client_secret"]))
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"
    # Even a self-registered row that says client_credentials (e.g. edited, or a metadata document).
    for source in (Application.RegistrationSource.DCR, Application.RegistrationSource.CIMD):
        secret = "s" * 48
        forged = make_client(
            redirect_uris="",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            registration_source=source,
        )
        answer = client_credentials(client, headers=basic_auth(forged.client_id, secret))
        assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_private_key_jwt_gets_a_token_with_no_secret_rfc7523_sec2_2(client, alg):
    key = KeyPair.make(alg)
    service, secret = service_client_create(name=f"Signer {alg}", scopes=["mcp"], jwks=key.jwks)
    assert secret is None and service.client_secret == ""
    for aud in (ISSUER, TOKEN_ENDPOINT):  # the issuer (RFC 7523bis) or the token endpoint (OIDC Core §9)
        answer = client_credentials(client, **with_assertion(key, service, aud=aud))
        assert answer.status_code == 200, answer.content
        assert stored_access_token(answer.json()["access_token"]).user == service.user


def refusal(answer) -> str:
    assert answer.status_code == 401, answer.content
    assert answer["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["error"] == "invalid_client"
    return body.get("error_description", "")


def test_expired_client_assertion_is_refused_rfc7523_sec3_item4(client, key, keyed_service):
    assert "expired" in refusal(client_credentials(client, **with_assertion(key, keyed_service, lifetime=-120)))


def test_long_lived_client_assertion_is_refused_rfc7523_sec3_item4(client, key, keyed_service):
    assert "too long" in refusal(client_credentials(client, **with_assertion(key, keyed_service, lifetime=86400)))


def test_replayed_client_assertion_jti_is_refused_rfc7523_sec3_item7(client, key, keyed_service):
    once = with_assertion(key, keyed_service)
    assert client_credentials(client, **once).status_code == 200
    assert "replayed" in refusal(client_credentials(client, **once))


def test_client_assertion_for_another_audience_is_refused_rfc7523_sec3_item3(client, key, keyed_service):
    answer = client_credentials(client, **with_assertion(key, keyed_service, aud="https://other.example"))
    assert "aud" in refusal(answer)


def test_client_assertion_with_alg_none_is_refused_rfc8725_sec2_1(client, keyed_service):
    claims = assertion_claims(iss=keyed_service.client_id, sub=keyed_service.client_id, aud=ISSUER)
    answer = client_credentials(client, client_assertion_type=ASSERTION_TYPE, client_assertion=unsigned(claims))
    assert "alg" in refusal(answer)


def test_client_assertion_hmac_signed_with_the_public_key_is_refused_rfc8725_sec2_1(client, key, keyed_service):
    claims = assertion_claims(iss=keyed_service.client_id, sub=keyed_service.client_id, aud=ISSUER)
    for secret in (key.public_pem, json.dumps(key.public_jwk).encode()):
        forged = hmac_signed_with(secret, claims, kid=key.kid)
        assert "alg" in refusal(
            client_credentials(client, client_assertion_type=ASSERTION_TYPE, client_assertion=forged)
        )


def test_client_assertion_signed_by_another_key_is_refused_rfc7523_sec3_item9(client, key, keyed_service):
    impostor = KeyPair.make("RS256", kid=key.kid)
    answer = client_credentials(client, **with_assertion(impostor, keyed_service))
    assert "signature" in refusal(answer)


def test_client_assertion_whose_iss_is_not_its_sub_is_refused_rfc7523_sec3_item1(client, key, keyed_service):
    claims = assertion_claims(iss="someone-else", sub=keyed_service.client_id, aud=ISSUER)
    answer = client_credentials(client, client_assertion_type=ASSERTION_TYPE, client_assertion=key.sign(claims))
    assert "iss and sub" in refusal(answer)


def test_client_assertion_with_a_secret_too_is_refused_rfc6749_sec2_3(client, key, keyed_service):
    answer = client_credentials(client, client_secret="x" * 40, **with_assertion(key, keyed_service))
    refusal(answer)


def test_secret_client_cannot_switch_to_private_key_jwt_rfc7591_sec2(client, key):
    service, _secret = service_client_create(name="Secret holder", scopes=["mcp"])
    service.jwks = key.jwks  # keys on the row, but it registered client_secret_basic
    service.save()
    assert "did not register" in refusal(client_credentials(client, **with_assertion(key, service)))


def test_private_key_jwt_revokes_and_introspects_rfc7009_rfc7662(client, key):
    service, _ = service_client_create(name="Revoker", scopes=["mcp"], jwks=key.jwks)
    token = client_credentials(client, **with_assertion(key, service)).json()["access_token"]
    resource_server = make_resource_server()
    resource_server.token_endpoint_auth_method = Application.AuthMethod.PRIVATE_KEY_JWT
    resource_server.jwks = key.jwks
    resource_server.save()
    introspected = client.post(
        "/o/introspect/",
        {"token": token, **with_assertion(key, resource_server, aud=ISSUER + "/o/introspect/")},
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    revoked = client.post("/o/revoke_token/", {"token": token, **with_assertion(key, service)})
    assert revoked.status_code == 200
    introspected = client.post("/o/introspect/", {"token": token, **with_assertion(key, resource_server)})
    assert introspected.json()["active"] is False


def test_jwks_uri_keys_are_fetched_cached_and_fetched_again_for_an_unknown_kid(client, key):
    uri = "https://keys.example/jwks.json"
    KeysAt.documents, KeysAt.fetched = {uri: key.jwks}, []
    with override_settings(
        OAUTH2_PROVIDER={**settings_dot(), "CIMD_METADATA_FETCHER": "tests.authserver.helpers.KeysAt"},
    ):
        service, _ = service_client_create(name="Published keys", scopes=["mcp"], jwks_uri=uri)
        assert client_credentials(client, **with_assertion(key, service)).status_code == 200
        assert client_credentials(client, **with_assertion(key, service)).status_code == 200
        assert KeysAt.fetched == [uri]  # cached
        rotated = KeyPair.make("ES256")
        KeysAt.documents[uri] = rotated.jwks  # the client rotated its key
        assert client_credentials(client, **with_assertion(rotated, service)).status_code == 200
        assert KeysAt.fetched == [uri, uri]  # fetched again once for the new kid
        # The old key is gone from the fresh set: its assertions fail now.
        assert "kid" in refusal(client_credentials(client, **with_assertion(key, service)))


def settings_dot() -> dict:
    from django.conf import settings as django_settings

    return dict(django_settings.OAUTH2_PROVIDER)


def test_service_client_needs_scopes_and_one_kind_of_key():
    from django.core.exceptions import ValidationError

    service = Application(
        name="Half made",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        token_endpoint_auth_method=Application.AuthMethod.PRIVATE_KEY_JWT,
    )
    with pytest.raises(ValidationError) as refused:
        service.full_clean()
    assert "allowed_scope" in refused.value.message_dict
    with pytest.raises(ValidationError, match="private key"):
        service_client_create(
            name="Leaky", scopes=["mcp"], jwks={"keys": [{**KeyPair.make().public_jwk, "d": "secret-part"}]}
        )
    with pytest.raises(ValidationError, match="symmetric"):
        service_client_create(name="Shared", scopes=["mcp"], jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    assertion=st.one_of(
        st.text(max_size=300),
        st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(max_size=40), st.text(max_size=80), st.text(max_size=40)),
    ),
    assertion_type=st.sampled_from([ASSERTION_TYPE, "", "urn:other", "\x00"]),
)
def test_any_client_assertion_gets_a_json_answer_never_a_500(client, assertion, assertion_type):
    answer = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_assertion_type": assertion_type, "client_assertion": assertion},
    )
    assert answer.status_code in (400, 401)
    assert answer["Content-Type"].startswith("application/json")
    assert "error" in answer.json()


def test_deactivating_the_service_user_stops_new_tokens(client):
    service, secret = service_client_create(name="Retired job", scopes=["mcp"])
    service.user.is_active = False
    service.user.save()
    answer = client_credentials(client, headers=basic_auth(service.client_id, secret))
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"


def test_refused_client_assertions_are_in_the_audit_trail_with_the_reason(client, key, keyed_service):
    client_credentials(client, **with_assertion(key, keyed_service, aud="https://other.example"))
    refused = AuditEvent.objects.get(kind=AuditEvent.Kind.ASSERTION_REFUSED)
    assert refused.client_id == keyed_service.client_id and "aud" in refused.detail["reason"]


def test_openid_discovery_names_the_private_key_jwt_algorithms_oidc_discovery_sec3(client):
    discovery = client.get("/.well-known/openid-configuration").json()
    assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"]
    assert discovery["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]


def test_an_unreachable_jwks_uri_is_not_fetched_again_on_every_request(client, key):
    uri = "https://keys.example/down.json"
    KeysAt.documents, KeysAt.fetched = {}, []  # every fetch fails (no document)
    with override_settings(
        OAUTH2_PROVIDER={**settings_dot(), "CIMD_METADATA_FETCHER": "tests.authserver.helpers.KeysAt"}
    ):
        service, _ = service_client_create(name="Keys down", scopes=["mcp"], jwks_uri=uri)
        for _ in range(3):
            assert "could not be fetched" in refusal(client_credentials(client, **with_assertion(key, service)))
    assert KeysAt.fetched == [uri]
