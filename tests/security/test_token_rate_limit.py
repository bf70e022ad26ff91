"""What anonymous callers can make the token endpoint do: bounded.

- Refusals anyone can cause as often as they like (garbage client assertions, for no client or for a
  real one) are audited in a bounded number of rows that say how many there were
  (``authserver.audit.audit_record_bounded``); a known client's refusal is still recorded, with its reason.
- The token endpoint is rate-limited per address and per client (tokens issued), the revocation
  endpoint per address: RFC 6585 §4's 429 with ``Retry-After``, in RFC 6749 §5.2's JSON shape,
  counted in the cache every worker shares.
"""

import json
import secrets
import textwrap
from urllib.parse import urlencode

import httpx2
import pytest
from django.conf import settings
from django.test import override_settings
from oauth2_provider.models import get_access_token_model

from authserver.models import Application, AuditEvent
from authserver.service_clients import service_client_create
from live.keys import KeyPair, assertion_claims
from live.paths import REDIRECT_URI
from live.server import PROJECT_DIR, LiveServer
from tests.authserver.helpers import ISSUER, basic_auth
from tests.factories import make_access_token, make_client
from tests.overrides import authserver_settings
from tests.security.helpers import assert_json_error

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SECRET = "confidential-client-secret-" + "x" * 30
ADDRESS = "203.0.113.7"
# Windows align to multiples of their length since the epoch: one this long holds the whole test.
WINDOW = 10**6


def refusals():
    return list(AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED).order_by("pk"))


def garbage_assertion(key: KeyPair) -> dict:
    """A well-formed client assertion, signed, for a client that does not exist (a new one each time)."""
    nobody = "no-such-client-" + secrets.token_hex(4)
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.sign(assertion_claims(iss=nobody, sub=nobody, aud=ISSUER)),
    }


@pytest.mark.django_db
@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc7523_s3_a_hundred_garbage_client_assertions_write_a_few_audit_rows_that_count_them(client):
    key = KeyPair.make("ES256")
    for attempt in range(100):
        data = garbage_assertion(key) if attempt % 2 else {**garbage_assertion(key), "client_assertion": "not-a-jwt"}
        assert_json_error(client.post("/o/token/", data, REMOTE_ADDR=ADDRESS), 401, "invalid_client")

    rows = refusals()
    assert len(rows) == 2  # one per reason: not a JWT, no such client
    assert {row.ip for row in rows} == {ADDRESS} and {row.client_id for row in rows} == {""}
    # Each row says how many it stands for, to within a factor of two (rewritten as the count doubles).
    assert all(32 <= row.detail["refusals_at_least"] <= 50 for row in rows), [row.detail for row in rows]


@pytest.mark.django_db
@authserver_settings(AUDIT_REFUSAL_ROWS_PER_WINDOW=5, AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc7523_s3_refusals_from_many_addresses_are_capped_and_a_known_clients_refusal_is_still_recorded(client):
    key = KeyPair.make("ES256")
    for host in range(100):
        answer = client.post("/o/token/", garbage_assertion(key), REMOTE_ADDR=f"198.51.100.{host}")
        assert_json_error(answer, 401, "invalid_client")
    anonymous = refusals()
    assert len(anonymous) == 5 + 1  # the cap, then one row counting the rest
    overflow = anonymous[-1]
    assert "counted here" in overflow.detail["reason"] and overflow.detail["refusals_at_least"] >= 64

    # Operators still see a known client's key not rotated in, with the client and the reason.
    service_key, other_key = KeyPair.make("ES256"), KeyPair.make("ES256")
    service, _ = service_client_create(name="Nightly report", scopes=["mcp"], jwks=service_key.jwks)
    signed = other_key.sign(assertion_claims(iss=service.client_id, sub=service.client_id, aud=ISSUER))
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
    assert_json_error(client.post("/o/token/", data, REMOTE_ADDR="192.0.2.9"), 401, "invalid_client")
    known = AuditEvent.objects.get(kind=AuditEvent.Kind.ASSERTION_REFUSED, client_id=service.client_id)
    assert known.ip == "192.0.2.9" and known.detail["refusals_at_least"] == 1
    assert known.detail["reason"] not in (overflow.detail["reason"], "No such client")


@pytest.mark.django_db
@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc7523_s2_1_an_authenticated_client_flooding_garbage_id_jags_writes_a_bounded_number_of_rows(client):
    agent = make_client(
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
    )
    for _ in range(40):
        answer = client.post(
            "/o/token/", {"grant_type": JWT_BEARER, "assertion": "a.b.c"}, **basic_auth(agent.client_id, SECRET)
        )
        assert_json_error(answer, 400, "invalid_grant")
    [row] = refusals()
    assert row.client_id == agent.client_id and row.detail["refusals_at_least"] == 32


def token_request(client, address: str, auth: dict | None = None):
    return client.post("/o/token/", {"grant_type": "client_credentials"}, REMOTE_ADDR=address, **(auth or {}))


@pytest.mark.django_db
@authserver_settings(TOKEN_RATE_LIMIT_PER_ADDRESS=3, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc6585_s4_token_requests_over_the_limit_per_address_get_429_with_retry_after(client):
    for _ in range(3):
        assert_json_error(token_request(client, ADDRESS), 401, "invalid_client")
    limited = token_request(client, ADDRESS)
    assert_json_error(limited, 429, "temporarily_unavailable")
    assert 1 <= int(limited["Retry-After"]) <= WINDOW
    # Another address is not held back; with the limit off (0), nobody is.
    assert token_request(client, "198.51.100.20").status_code == 401
    # An IPv6 caller is its /64 (RFC 6177: one subscriber's), not each of its 2^64 addresses.
    assert [token_request(client, f"2001:db8::{host}").status_code for host in range(1, 5)] == [401, 401, 401, 429]
    assert token_request(client, "2001:db8:0:1::1").status_code == 401
    assert token_request(client, f"::ffff:{ADDRESS}").status_code == 429  # IPv4, as a dual-stack socket sees it
    assert token_request(client, "::ffff:198.51.100.21").status_code == 401
    with authserver_settings(TOKEN_RATE_LIMIT_PER_ADDRESS=0):
        assert [token_request(client, ADDRESS).status_code for _ in range(5)] == [401] * 5


@pytest.mark.django_db
@authserver_settings(TOKEN_RATE_LIMIT_PER_CLIENT=2, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc6585_s4_tokens_over_the_limit_per_client_get_429_from_any_address_and_strangers_spend_none(client):
    service, secret = service_client_create(name="Nightly report", scopes=["mcp"])
    other, other_secret = service_client_create(name="Weekly report", scopes=["mcp"])
    # Anyone can name a client: requests that do not get a token do not spend its allowance.
    for host in range(5):
        stranger = token_request(client, f"198.51.100.{host}", basic_auth(service.client_id, "guess"))
        assert_json_error(stranger, 401, "invalid_client")
    auth = basic_auth(service.client_id, secret)
    assert [token_request(client, ADDRESS, auth).status_code for _ in range(2)] == [200, 200]
    limited = token_request(client, "192.0.2.9", auth)
    assert_json_error(limited, 429, "temporarily_unavailable")
    assert 1 <= int(limited["Retry-After"]) <= WINDOW
    assert token_request(client, ADDRESS, basic_auth(other.client_id, other_secret)).status_code == 200


@pytest.mark.django_db
@authserver_settings(TOKEN_RATE_LIMIT_PER_ADDRESS=2, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc6585_s4_revocation_requests_over_the_limit_per_address_get_429(client, alice):
    app = make_client()
    token = make_access_token(alice, app)
    for _ in range(2):
        unknown = {"token": "not-a-token", "client_id": app.client_id}
        assert client.post("/o/revoke_token/", unknown, REMOTE_ADDR=ADDRESS).status_code == 200
    limited = client.post("/o/revoke_token/", {"token": token, "client_id": app.client_id}, REMOTE_ADDR=ADDRESS)
    assert_json_error(limited, 429, "temporarily_unavailable")
    assert limited["Retry-After"]
    assert get_access_token_model().objects.filter(user=alice).exists()  # the token was not revoked


class AnyMetadataDocument:
    """A stand-in for DOT's metadata-document fetcher: an attacker's server answering every URL with a
    valid document (DOT's real fetcher reaches only public https hosts, which an attacker has)."""

    def fetch(self, client_id):
        document = {"client_id": client_id, "client_name": "Made up", "redirect_uris": [REDIRECT_URI]}
        return {**document, "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}, 300


@pytest.mark.django_db
@authserver_settings(REGISTRATION_RATE_LIMIT=3, REGISTRATION_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc7591_s3_metadata_document_clients_made_by_anonymous_requests_count_as_registrations_per_address(client):
    # Not pytest-django's `settings` fixture: undone after the decorator's override, it restored that
    # override (this test's limits) for every later test in the run.
    fetcher = {**settings.OAUTH2_PROVIDER, "CIMD_METADATA_FETCHER": f"{__name__}.AnyMetadataDocument"}
    with override_settings(OAUTH2_PROVIDER=fetcher):
        for number in range(6):  # nobody signed in: a token request naming a new document each time
            data = {"grant_type": "authorization_code", "code": "x", "client_id": f"https://evil.example/{number}.json"}
            client.post("/o/token/", data, REMOTE_ADDR=ADDRESS)
        assert Application.objects.filter(registration_source="cimd").count() == 3
        # Another address registers as it could; RFC 7591 registration shares the allowance.
        revocation = {"token": "x", "client_id": "https://evil.example/7.json"}
        client.post("/o/revoke_token/", revocation, REMOTE_ADDR="192.0.2.9")
        assert Application.objects.filter(registration_source="cimd").count() == 4
    assert client.post("/o/register/", "{}", content_type="application/json", REMOTE_ADDR=ADDRESS).status_code == 429


# --- Two server processes, one database cache ------------------------------------------------------


def test_rfc6585_s4_the_address_limit_and_the_audit_bound_hold_across_two_server_processes(tmp_path):
    """Two processes, as two workers are, sharing the database (and so its cache table): the limit
    and the audit trail's bound are counted once, whichever process answers."""
    settings_dir = tmp_path / "settings"
    settings_dir.mkdir()
    (settings_dir / "limited_settings.py").write_text(
        textwrap.dedent(
            f"""
            from config.settings import *  # noqa: F403

            AUTHSERVER = {{
                **AUTHSERVER,  # noqa: F405
                "TOKEN_RATE_LIMIT_PER_ADDRESS": 8,
                "TOKEN_RATE_WINDOW_SECONDS": {WINDOW},
                "AUDIT_REFUSAL_WINDOW_SECONDS": {WINDOW},
            }}
            """
        )
    )
    env = {"DJANGO_SETTINGS_MODULE": "limited_settings", "PYTHONPATH": f"{settings_dir}:{PROJECT_DIR}"}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    key = KeyPair.make("ES256")
    one = LiveServer(tmp_path / "one", env=env).start()
    try:
        shared = {name: one.env[name] for name in ("DATABASE_URL", "DJANGO_VAR_DIR")}
        two = LiveServer(tmp_path / "two", env={**env, **shared}).start()
        try:
            answers = []
            for attempt in range(10):
                server = (one, two)[attempt % 2]
                nobody = "no-such-client-" + secrets.token_hex(4)
                data = {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": key.sign(assertion_claims(iss=nobody, sub=nobody, aud=server.url)),
                }
                answers.append(httpx2.post(server.url + "/o/token/", content=urlencode(data), headers=FORM, timeout=30))
            printed = one.manage(
                "shell",
                "-c",
                "import json\n"
                "from authserver.models import AuditEvent\n"
                "refused = AuditEvent.objects.filter(kind='assertion.refused')\n"
                "print(json.dumps(list(refused.values_list('detail', flat=True))))",
            )
            rows = json.loads(printed.strip().splitlines()[-1])  # the shell may say more before it
        finally:
            two.stop()
    finally:
        one.stop()

    assert [answer.status_code for answer in answers] == [401] * 8 + [429] * 2
    for limited in answers[8:]:
        assert limited.headers["content-type"] == "application/json"
        assert limited.json()["error"] == "temporarily_unavailable" and int(limited.headers["retry-after"]) > 0
    assert [row["refusals_at_least"] for row in rows] == [8]


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
