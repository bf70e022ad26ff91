"""RFC 8414 / OpenID discovery / RFC 9728: what is advertised, and that the issuer is one string."""

import pytest
from django.test import override_settings

from live.paths import MCP_METADATA_PATH, MCP_PATH, SSE_METADATA_PATH, SSE_PATH
from tests.authserver.helpers import authorize_url, pkce_pair, redirect_params, site_url_settings
from tests.factories import make_client, make_user

pytestmark = pytest.mark.django_db


def _issuers(client, **extra):
    """The issuer as the three documents and a real authorization response name it, and the resource."""
    as_metadata = client.get("/.well-known/oauth-authorization-server", **extra).json()
    oidc = client.get("/.well-known/openid-configuration", **extra).json()
    prm = client.get(MCP_METADATA_PATH, **extra).json()
    client.force_login(make_user())
    _verifier, challenge = pkce_pair()
    response = client.get(authorize_url(make_client(skip_authorization=True), challenge), **extra)
    iss = redirect_params(response)["iss"]
    return as_metadata["issuer"], iss, prm["authorization_servers"][0], oidc["issuer"], prm["resource"]


def test_issuer_iss_and_authorization_server_agree_without_site_url(client):
    issuer, iss, authorization_server, oidc_issuer, resource = _issuers(client, HTTP_HOST="127.0.0.1:8000")
    assert issuer == iss == authorization_server == oidc_issuer == "http://127.0.0.1:8000"
    assert resource == "http://127.0.0.1:8000/star/mcp"


def test_issuer_follows_the_request_origin_without_site_url(client):
    issuer, iss, authorization_server, _oidc, resource = _issuers(client, HTTP_HOST="localhost:8000")
    assert issuer == iss == authorization_server == "http://localhost:8000"
    assert resource == "http://localhost:8000/star/mcp"


def test_issuer_iss_and_authorization_server_agree_with_site_url(client):
    with override_settings(**site_url_settings("https://mcp.example.com")):
        issuer, iss, authorization_server, oidc_issuer, resource = _issuers(client, HTTP_HOST="127.0.0.1:8000")
    assert issuer == iss == authorization_server == oidc_issuer == "https://mcp.example.com"
    assert resource == "https://mcp.example.com/star/mcp"


def test_metadata_advertises_exactly_the_code_flow_with_s256(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["registration_endpoint"] == "http://testserver/o/register/"
    assert metadata["authorization_endpoint"] == "http://testserver/o/authorize/"
    assert metadata["token_endpoint"] == "http://testserver/o/token/"
    assert metadata["revocation_endpoint"] == "http://testserver/o/revoke_token/"
    assert metadata["introspection_endpoint"] == "http://testserver/o/introspect/"


def test_metadata_advertises_private_key_jwt_and_the_id_jag_profile_rfc7523_rfc8414_sec2(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert "private_key_jwt" in metadata[f"{endpoint}_auth_methods_supported"]
        # RFC 8725 §3.1: asymmetric algorithms only; never none, never HMAC.
        assert metadata[f"{endpoint}_auth_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
    assert metadata["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]


def test_openid_discovery_names_userinfo_and_jwks(client):
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["userinfo_endpoint"] == "http://testserver/o/userinfo/"
    assert discovery["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert discovery["response_types_supported"] == ["code"]
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and keys[0]["kty"] == "RSA"


def test_protected_resource_metadata_is_served_at_both_well_known_forms(client):
    with_path = client.get(MCP_METADATA_PATH).json()
    bare = client.get("/.well-known/oauth-protected-resource").json()
    assert with_path == bare
    assert with_path["resource"] == "http://testserver" + MCP_PATH
    assert with_path["authorization_servers"] == ["http://testserver"]
    # Minimal: the base scope only; each tool's challenge asks for what it needs on top.
    assert with_path["scopes_supported"] == ["mcp"]


def test_authorization_server_metadata_lists_every_registered_scope_including_the_apps(client):
    scopes = client.get("/.well-known/oauth-authorization-server").json()["scopes_supported"]
    assert {"mcp", "profile", "email", "openid", "notes", "notes:read", "notes:write"} <= set(scopes)


def test_sse_endpoint_has_its_own_resource_metadata(client):
    metadata = client.get(SSE_METADATA_PATH).json()
    assert metadata["resource"] == "http://testserver" + SSE_PATH
    assert metadata["authorization_servers"] == ["http://testserver"]


def test_without_a_signing_key_token_exchange_is_not_advertised_rfc8414_sec2(client, settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ENABLED": False, "OIDC_RSA_PRIVATE_KEY": ""}
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert "urn:ietf:params:oauth:grant-type:token-exchange" not in metadata["grant_types_supported"]
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in metadata["grant_types_supported"]
