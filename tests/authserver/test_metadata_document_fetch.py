"""Client ID Metadata Documents fetched for real: DOT's SSRF-hardened fetcher as this project
configures it (``authserver.dot.metadata_documents.MetadataDocumentFetcher``).

First, the fetcher as it runs in production refuses every address an attacker could point it at.
Then a document server on loopback (HTTPS, its certificate signed by a CA made for the test) stands
in for an agent's website: only for those tests the fetcher trusts that CA and may reach loopback.
A network guard (an audit hook) fails any test in this module that would resolve a name other
than ``localhost`` or connect anywhere but loopback, so nothing here leaves the machine.
"""

import ipaddress
import logging
import socket
import ssl
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import oauth2_provider.cimd
import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from oauth2_provider.cimd import CIMDError
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings

from authserver.dot.metadata_documents import MetadataDocumentFetcher, auth_method_negotiate
from tests.authserver.document_server import (
    LOOPBACK_ADDRESSES,
    SERVER_SOCKET_TIMEOUT_SECONDS,
    STALL_SECONDS,
    DocumentServer,
    throwaway_tls,
)
from tests.authserver.helpers import ISSUER, assert_authorize_refuses, authorize_url, consent_answer, pkce_pair
from tests.factories import make_user

pytestmark = pytest.mark.django_db

# --- The network guard -----------------------------------------------------------------------------

_guard = {"on": False, "violations": []}


def _is_numeric_host(host) -> bool:
    """An address literal, in any spelling getaddrinfo parses without DNS (``2130706433``, ``0x7f000001``)."""
    host = host.decode() if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return False


def _is_loopback_address(host) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse_traffic_beyond_loopback(event, args):
    """PEP 578 audit hook: sees each name lookup and connection before it happens, and can stop it.

    The violation is also recorded, because DOT turns any unexpected exception into "unknown client".
    """
    if not _guard["on"]:
        return
    if event == "socket.getaddrinfo" and args[0] not in (None, "localhost", b"localhost"):
        if not _is_numeric_host(args[0]):
            _guard["violations"].append(f"DNS lookup of {args[0]!r}")
            raise RuntimeError(f"test tried to resolve {args[0]!r}")
    if event == "socket.connect" and isinstance(args[1], tuple) and not _is_loopback_address(args[1][0]):
        _guard["violations"].append(f"connection to {args[1]!r}")
        raise RuntimeError(f"test tried to connect to {args[1]!r}")


sys.addaudithook(_refuse_traffic_beyond_loopback)  # inert outside this module's tests (see the fixture)


@pytest.fixture(autouse=True)
def loopback_only_network():
    """Every test here stays on this machine: a name lookup or connection beyond loopback fails it."""
    _guard["on"], _guard["violations"] = True, []
    yield
    _guard["on"] = False
    assert not _guard["violations"]


@pytest.fixture(autouse=True)
def no_cached_failures():
    """DOT backs off a failed client_id URL in the cache; each test starts without that memory."""
    cache.clear()
    yield
    cache.clear()


def provider_settings(**overrides):
    return override_settings(OAUTH2_PROVIDER={**settings.OAUTH2_PROVIDER, **overrides})


# --- The configured fetcher -------------------------------------------------------------------------


def test_the_configured_fetcher_is_dots_fetcher_with_auth_method_negotiation():
    assert oauth2_settings.CIMD_METADATA_FETCHER is MetadataDocumentFetcher


def test_a_document_that_also_supports_none_is_registered_as_a_public_client():
    document = {"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_methods_supported": ["none"]}
    assert auth_method_negotiate(metadata=document)["token_endpoint_auth_method"] == "none"
    assert document["token_endpoint_auth_method"] == "private_key_jwt"  # a copy; the fetched document is kept


@pytest.mark.parametrize(
    "document",
    [
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_methods_supported": ["private_key_jwt"]},
        {"token_endpoint_auth_method": "none"},
    ],
)
def test_a_document_that_does_not_support_none_keeps_its_own_auth_method(document):
    assert auth_method_negotiate(metadata=document) == document


@pytest.mark.parametrize("supported", ["none", [None], [["none"]], {"none": True}, 1])
def test_a_malformed_list_of_supported_auth_methods_is_refused(supported):
    with pytest.raises(CIMDError, match="token_endpoint_auth_methods_supported"):
        auth_method_negotiate(metadata={"token_endpoint_auth_methods_supported": supported})


# --- Dangerous targets: refused before any connection ------------------------------------------------

NOT_HTTPS = "https scheme"
NOT_PUBLIC = "non-public address"


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        ("http://127.0.0.1/client.json", NOT_HTTPS),
        ("http://localhost:8000/client.json", NOT_HTTPS),
        ("https://127.0.0.1/client.json", NOT_PUBLIC),
        ("https://localhost/client.json", NOT_PUBLIC),
        ("https://[::1]/client.json", NOT_PUBLIC),
        ("https://[::ffff:127.0.0.1]/client.json", NOT_PUBLIC),  # IPv4-mapped IPv6 loopback
        ("https://2130706433/client.json", NOT_PUBLIC),  # 127.0.0.1 spelled as one decimal number
        ("https://0x7f000001/client.json", NOT_PUBLIC),  # ... and in hex
        ("https://10.0.0.1/client.json", NOT_PUBLIC),
        ("https://192.168.1.1/client.json", NOT_PUBLIC),
        ("https://172.16.0.1/client.json", NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data", NOT_PUBLIC),  # cloud instance metadata
        ("https://[fe80::1]/client.json", NOT_PUBLIC),
        ("https://[fd00::1]/client.json", NOT_PUBLIC),
        ("https://0.0.0.0/client.json", NOT_PUBLIC),
        ("https://100.64.0.1/client.json", NOT_PUBLIC),  # carrier-grade NAT (RFC 6598)
        ("https://[64:ff9b::7f00:1]/client.json", NOT_PUBLIC),  # NAT64 (RFC 6052) of 127.0.0.1
        ("https://agent@127.0.0.1/client.json", "userinfo"),
        ("https://127.0.0.1/client.json#fragment", "fragment"),
    ],
)
def test_the_fetcher_refuses_a_client_id_pointing_inside_the_network(client_id, reason):
    # draft-ietf-oauth-client-id-metadata-document §3: https, no userinfo, no fragment;
    # its security considerations (SSRF): never fetch from an internal address.
    host = urlsplit(client_id).hostname
    if host != "localhost":
        try:
            socket.getaddrinfo(host, 443, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            pytest.skip(f"this resolver does not read {host!r} as an address literal")
    with pytest.raises(CIMDError, match=reason):
        MetadataDocumentFetcher().fetch(client_id)


@pytest.mark.parametrize(
    "client_id",
    ["https://169.254.169.254/latest/meta-data", "https://127.0.0.1/client.json", "http://localhost/client.json"],
)
def test_authorize_refuses_a_client_id_pointing_inside_the_network(client, client_id):
    assert_authorize_refuses(client, client_id)


# --- A document server on loopback ------------------------------------------------------------------


@pytest.fixture(scope="module")
def throwaway_tls_for_tests(tmp_path_factory):
    return throwaway_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def document_server(throwaway_tls_for_tests, monkeypatch):
    """The document server, and, for this test only, a fetcher that trusts its CA and may reach loopback.

    DOT builds its TLS context with ``ssl.create_default_context()``, which reads ``SSL_CERT_FILE`` each
    time; and DOT looks up its module-level ``_ip_is_public`` on every fetch. Production has no setting
    that could open either.
    """
    monkeypatch.setenv("SSL_CERT_FILE", throwaway_tls_for_tests["ca_path"])
    assert any(
        ca["subject"] == ((("commonName", "Throwaway test CA"),),) for ca in ssl.create_default_context().get_ca_certs()
    )
    monkeypatch.setattr(oauth2_provider.cimd, "_ip_is_public", lambda ip: ip in LOOPBACK_ADDRESSES)

    server = DocumentServer(throwaway_tls_for_tests["server_context"])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=SERVER_SOCKET_TIMEOUT_SECONDS)
    assert not thread.is_alive()


CLAUDE_CODE = {
    "client_name": "Claude Code",
    "redirect_uris": ["http://localhost/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}
CHATGPT_REDIRECT_URI = "https://chatgpt.com/connector/oauth/abc123"
CHATGPT = {
    "client_name": "ChatGPT",
    "redirect_uris": [CHATGPT_REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "private_key_jwt",
    "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
    "token_endpoint_auth_signing_alg": "RS256",
    "jwks_uri": "https://chatgpt.com/oauth/jwks.json",
}


def authorize_and_redeem(client, client_id, redirect_uri) -> dict:
    """The agent's whole authorization code flow with PKCE; returns the token response."""
    client.force_login(make_user())
    verifier, challenge = pkce_pair()
    url = authorize_url(client_id, challenge, redirect_uri=redirect_uri)
    page = client.get(url)
    assert page.status_code == 200, page.content

    answer = client.post(url, consent_answer(page))
    location = answer["Location"]
    assert location.startswith(redirect_uri + "?"), location
    params = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    assert params["iss"] == ISSUER  # RFC 9207 §2
    assert params["state"] == "state-123"

    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.content
    return token.json()


def assert_stored_as_public_metadata_document_client(client_id, name):
    stored = get_application_model().objects.get(client_id=client_id)
    assert stored.registration_source == "cimd"
    assert stored.client_type == "public"
    assert stored.name == name


def test_claude_code_document_gets_a_token_on_the_loopback_port_the_app_picked(client, document_server):
    # RFC 8252 §7.3: a portless loopback redirect URI matches whatever port the app listens on.
    client_id = document_server.publish("/claude.json", CLAUDE_CODE)
    body = authorize_and_redeem(client, client_id, "http://localhost:53117/callback")
    assert body["access_token"] and body["token_type"] == "Bearer"
    assert_stored_as_public_metadata_document_client(client_id, "Claude Code")
    assert document_server.requested == ["/claude.json"]


def test_chatgpt_document_preferring_private_key_jwt_but_supporting_none_gets_a_token(client, document_server):
    # OpenID Connect RP Metadata Choices §2: the server picks "none" from the supported methods.
    client_id = document_server.publish("/oauth/abc123/client.json", CHATGPT)
    body = authorize_and_redeem(client, client_id, CHATGPT_REDIRECT_URI)
    assert body["access_token"]
    assert_stored_as_public_metadata_document_client(client_id, "ChatGPT")


def test_a_document_that_only_signs_uses_private_key_jwt_with_its_published_keys_rfc7523_sec2_2(
    client, document_server
):
    from authserver.models import AuditEvent
    from live.keys import KeyPair, assertion_claims

    key = KeyPair.make("ES256")
    jwks_uri = document_server.publish("/oauth/jwks.json", key.jwks)
    document = {**CHATGPT, "token_endpoint_auth_methods_supported": ["private_key_jwt"], "jwks_uri": jwks_uri}
    client_id = document_server.publish("/oauth/signer/client.json", document)

    def signed(aud=ISSUER):
        assertion = key.sign(assertion_claims(iss=client_id, sub=client_id, aud=aud))
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }

    client.force_login(make_user())
    for credentials, status in ((signed(aud="https://other.example"), 401), ({}, 401), (signed(), 200)):
        verifier, challenge = pkce_pair()
        url = authorize_url(client_id, challenge, redirect_uri=CHATGPT_REDIRECT_URI)
        page = client.get(url)
        answer = client.post(url, consent_answer(page)) if page.status_code == 200 else page
        code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
        token = client.post(
            "/o/token/",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CHATGPT_REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
                **credentials,
            },
        )
        assert token.status_code == status, token.content
    stored = get_application_model().objects.get(client_id=client_id)
    assert (stored.registration_source, stored.token_endpoint_auth_method) == ("cimd", "private_key_jwt")
    assert stored.jwks_uri == jwks_uri and stored.client_secret == ""
    assert document_server.requested.count("/oauth/jwks.json") == 1  # fetched when first needed, then cached
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED, client_id=client_id).exists()


def dot_refusal_reason(caplog) -> str:
    """Why DOT refused to resolve the client_id, as it logs it (the client never sees it)."""
    reasons = [record.getMessage() for record in caplog.records if "CIMD resolution failed" in record.getMessage()]
    assert len(reasons) == 1, reasons
    return reasons[0]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            {**CHATGPT, "token_endpoint_auth_methods_supported": ["private_key_jwt"], "jwks_uri": None},
            "jwks_uri",  # private_key_jwt needs the client's published keys
        ),
        ({**CHATGPT, "token_endpoint_auth_methods_supported": "none"}, "token_endpoint_auth_methods_supported"),
        (
            {**CLAUDE_CODE, "client_id": "https://agent.example.com/claude.json"},
            "does not match",  # the draft: a document names its own URL as client_id
        ),
        ({**CLAUDE_CODE, "redirect_uris": ["http://evil.example.com/cb"]}, "invalid client metadata"),
    ],
    ids=["only_private_key_jwt", "malformed_supported_methods", "client_id_of_another_url", "http_redirect_elsewhere"],
)
def test_a_document_this_server_cannot_honour_is_refused_and_nothing_is_stored(
    client, document_server, caplog, document, reason
):
    client_id = document_server.publish("/client.json", document)
    with caplog.at_level(logging.INFO, logger="oauth2_provider.cimd"):
        assert_authorize_refuses(client, client_id)
    assert reason in dot_refusal_reason(caplog)


def test_a_redirect_from_the_document_url_is_not_followed(client, document_server, caplog):
    target = document_server.publish("/claude.json", CLAUDE_CODE)
    client_id = document_server.answer("/moved.json", status=302, headers={"Location": target})
    with caplog.at_level(logging.INFO, logger="oauth2_provider.cimd"):
        assert_authorize_refuses(client, client_id)
    assert "HTTP 302" in dot_refusal_reason(caplog)
    assert document_server.requested == ["/moved.json"]


def test_a_document_served_as_html_is_refused(client, document_server, caplog):
    client_id = document_server.publish("/client.json", CLAUDE_CODE, content_type="text/html")
    with caplog.at_level(logging.INFO, logger="oauth2_provider.cimd"):
        assert_authorize_refuses(client, client_id)
    assert "not JSON" in dot_refusal_reason(caplog)


def test_a_document_larger_than_the_size_cap_is_refused(client, document_server, caplog):
    client_id = document_server.publish("/client.json", {**CLAUDE_CODE, "client_uri": "https://a.example/" + "x" * 600})
    with provider_settings(CIMD_MAX_DOCUMENT_SIZE=512), caplog.at_level(logging.INFO, logger="oauth2_provider.cimd"):
        assert_authorize_refuses(client, client_id)
    assert "exceeds the maximum allowed size" in dot_refusal_reason(caplog)


def test_a_document_server_that_stalls_is_given_up_on(client, document_server, caplog):
    client_id = document_server.publish("/client.json", CLAUDE_CODE, stall=True)
    started = time.monotonic()
    with provider_settings(CIMD_FETCH_TIMEOUT_SECONDS=1), caplog.at_level(logging.INFO, logger="oauth2_provider.cimd"):
        assert_authorize_refuses(client, client_id)
    assert time.monotonic() - started < STALL_SECONDS  # gave up before the server would have answered
    assert "could not fetch" in dot_refusal_reason(caplog)
