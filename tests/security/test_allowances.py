"""Allowances and bounded writes, as an attacker tries to spend or flood them.

- A public client (a metadata-document agent, one registered with ``none``) is shared by everyone who
  uses it and proves nothing (RFC 6749 §2.1): one person cannot spend its token allowance for all.
- Registration, and RFC 7592 updates and deletions, are limited per address, an IPv6 one by its /64
  (RFC 6177), with the token endpoint's 429 (RFC 6585 §4, CWE-770).
- A replayed code or a reused refresh token is recorded at once the first time; its repeats write a
  bounded number of rows (RFC 6749 §4.1.2, RFC 9700 §4.14.2, CWE-770).
- Introspection names the person's username only as the token's scopes release it (RFC 7662 §2.2,
  OpenID Connect Core §5.4).
- Registration JSON naming a member twice is refused (RFC 8259 §4, CWE-436, RFC 7591 §3.2.2).
"""

import json

import pytest
from django.test import Client

from authserver.models import Application, AuditEvent
from authserver.service_clients import service_client_create
from live.paths import REDIRECT_URI
from tests.authserver.helpers import AGENT, approved_code, basic_auth, connect, exchange_code, refresh, register
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server, make_user
from tests.overrides import authserver_settings
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

# Windows align to multiples of their length since the epoch: one this long holds the whole test.
WINDOW = 10**6


def signed_in_as(username: str) -> Client:
    browser = Client()
    browser.force_login(make_user(username))
    return browser


def events(kind: AuditEvent.Kind) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind).order_by("pk"))


def code_replayed(app, code: str, verifier: str, *, address: str):
    """A redemption of ``code`` sent from ``address``."""
    data = {"grant_type": "authorization_code", "code": code, "client_id": app.client_id, "code_verifier": verifier}
    return Client().post("/o/token/", {**data, "redirect_uri": REDIRECT_URI}, REMOTE_ADDR=address)


# --- 1. A shared public client's token allowance -----------------------------------------------------


@authserver_settings(TOKEN_RATE_LIMIT_PER_CLIENT=5, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc6749_s2_1_one_person_refreshing_cannot_spend_a_shared_public_clients_token_allowance():
    shared = make_client(name="Shared public agent")
    mallory, alice = signed_in_as("mallory"), signed_in_as("alice")
    refresh_token = connect(mallory, shared)["refresh_token"]
    for _ in range(10):  # twice the client's allowance, all by one person
        answer = refresh(mallory, shared, refresh_token)
        assert answer.status_code == 200, answer.content
        refresh_token = answer.json()["refresh_token"]

    code, verifier = approved_code(alice, shared)
    honest = exchange_code(alice, shared, code, verifier)
    assert honest.status_code == 200, honest.content
    assert "access_token" in honest.json()


@authserver_settings(TOKEN_RATE_LIMIT_PER_CLIENT=2, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc6749_s2_3_a_client_that_authenticates_still_has_its_allowance(client):
    service, secret = service_client_create(name="Nightly report", scopes=["mcp"])
    auth = basic_auth(service.client_id, secret)
    statuses = [client.post("/o/token/", {"grant_type": "client_credentials"}, **auth).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@authserver_settings(TOKEN_RATE_LIMIT_PER_CLIENT=2, TOKEN_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc7617_s2_cwe436_basic_credentials_outside_base64_authenticate_nobody(client):
    """Lenient base64 dropped a character outside the alphabet, so "Basic QWxh!..." authenticated a
    client whose allowance, reading the header strictly, never counted it: one header, one reading."""
    service, secret = service_client_create(name="Nightly report", scopes=["mcp"])
    canonical = basic_auth(service.client_id, secret)["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    lenient = {"HTTP_AUTHORIZATION": f"Basic {canonical[:4]}!{canonical[4:]}"}
    answers = [
        client.post("/o/token/", {"grant_type": "client_credentials"}, REMOTE_ADDR=f"198.51.100.{n}", **lenient)
        for n in range(3)
    ]
    for answer in answers:
        assert_json_error(answer, 401, "invalid_client")
    # The client's own allowance is untouched, and its canonical header still works.
    assert (
        client.post(
            "/o/token/", {"grant_type": "client_credentials"}, **basic_auth(service.client_id, secret)
        ).status_code
        == 200
    )


# --- 2. Registration per address, IPv6 by its /64 ---------------------------------------------------


def registered_from(client, address: str):
    return client.post("/o/register/", json.dumps(AGENT), content_type="application/json", REMOTE_ADDR=address)


@authserver_settings(REGISTRATION_RATE_LIMIT=2, REGISTRATION_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc7591_rfc6177_registrations_from_one_ipv6_64_share_one_allowance(client):
    answers = [registered_from(client, f"2001:db8:5:6::{host:x}") for host in range(1, 11)]
    assert [answer.status_code for answer in answers] == [201, 201] + [429] * 8
    limited = assert_json_error(answers[-1], 429, "temporarily_unavailable")
    assert "registration" in limited["error_description"]
    assert 1 <= int(answers[-1]["Retry-After"]) <= WINDOW and answers[-1]["Cache-Control"] == "no-store"
    assert Application.objects.filter(registration_source=Application.RegistrationSource.DCR).count() == 2
    # Another /64 is another subscriber.
    assert registered_from(client, "2001:db8:5:7::1").status_code == 201


# --- 3. Alarms recorded at once, their repeats bounded; RFC 7592 writes limited ----------------------


@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc6749_s4_1_2_cwe770_thirty_replays_of_a_code_write_the_alarm_and_one_row_counting_the_rest():
    app = make_client()
    code, verifier = approved_code(signed_in_as("alice"), app)
    assert exchange_code(Client(), app, code, verifier).status_code == 200
    for _ in range(30):
        assert_json_error(exchange_code(Client(), app, code, verifier), 400, "invalid_grant")

    alarm, repeats = events(AuditEvent.Kind.CODE_REPLAY_DETECTED)
    # The first replay, at once and in full: whose tokens, which family.
    assert alarm.username == "alice" and alarm.application == app and alarm.detail["family"]
    assert "refusals_at_least" not in alarm.detail
    # The other 29, on one row that says how many (to within a factor of two).
    assert repeats.detail["family"] == alarm.detail["family"] and repeats.detail["refusals_at_least"] == 16


@authserver_settings(AUDIT_REFUSAL_ROWS_PER_WINDOW=2, AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc6749_s4_1_2_the_first_replay_of_a_code_is_recorded_at_once_even_after_a_flood_of_repeats():
    app, person = make_client(), signed_in_as("alice")
    flooded, flooded_verifier = approved_code(person, app)
    assert exchange_code(Client(), app, flooded, flooded_verifier).status_code == 200
    stolen, stolen_verifier = approved_code(person, app)
    assert exchange_code(Client(), app, stolen, stolen_verifier).status_code == 200
    for host in range(40):  # one code's repeats from many addresses fill the window's rows for this client
        replay = code_replayed(app, flooded, flooded_verifier, address=f"198.51.100.{host}")
        assert_json_error(replay, 400, "invalid_grant")
    rows_after_flood = len(events(AuditEvent.Kind.CODE_REPLAY_DETECTED))
    assert rows_after_flood <= 1 + 2 + 1  # the alarm, the cap, one row counting the rest

    assert_json_error(code_replayed(app, stolen, stolen_verifier, address="192.0.2.9"), 400, "invalid_grant")
    alarm = events(AuditEvent.Kind.CODE_REPLAY_DETECTED)[-1]
    assert (alarm.username, alarm.ip) == ("alice", "192.0.2.9") and "refusals_at_least" not in alarm.detail


@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_rfc9700_s4_14_2_cwe770_thirty_reuses_of_a_rotated_refresh_token_write_the_alarm_and_one_counting_row():
    app = make_client()
    first = connect(signed_in_as("alice"), app)["refresh_token"]
    assert refresh(Client(), app, first).status_code == 200  # rotated: `first` is spent
    for _ in range(30):
        assert_json_error(refresh(Client(), app, first), 400, "invalid_grant")

    alarm, repeats = events(AuditEvent.Kind.REFRESH_REUSE_DETECTED)
    assert alarm.username == "alice" and alarm.detail["family"] and "refusals_at_least" not in alarm.detail
    assert repeats.detail["family"] == alarm.detail["family"] and repeats.detail["refusals_at_least"] == 16
    assert repeats.username == "alice"


@authserver_settings(REGISTRATION_RATE_LIMIT=3, REGISTRATION_RATE_WINDOW_SECONDS=WINDOW)
def test_rfc7592_s2_cwe770_updates_and_deletions_share_the_registration_allowance_per_address(client):
    registered = register(client, AGENT).json()  # 1
    token, uri = registered["registration_access_token"], registered["registration_client_uri"]
    statuses = []
    for number in range(3):  # 2, 3, then over
        body = {**AGENT, "client_id": registered["client_id"], "client_name": f"agent {number}"}
        bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        answer = client.put(uri, json.dumps(body), content_type="application/json", **bearer)
        statuses.append(answer.status_code)
        token = answer.json().get("registration_access_token", token)
    assert statuses == [200, 200, 429]
    assert_json_error(answer, 429, "temporarily_unavailable")
    assert int(answer["Retry-After"]) >= 1
    assert Application.objects.get(client_id=registered["client_id"]).name == "agent 1"
    assert len(events(AuditEvent.Kind.CLIENT_UPDATED)) == 2

    deleted = client.delete(uri, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_json_error(deleted, 429, "temporarily_unavailable")
    assert Application.objects.filter(client_id=registered["client_id"]).exists()
    # The registration access token is not the limit: from another address, the client manages itself.
    assert client.delete(uri, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="192.0.2.9").status_code == 204
    assert not Application.objects.filter(client_id=registered["client_id"]).exists()


# --- 4. Introspection releases the username as the token's scopes do ---------------------------------


@pytest.mark.parametrize(
    ("username", "scope", "released"),
    [
        ("ada@example.com", "mcp", False),
        ("ada@example.com", "mcp profile", False),  # an address needs `email`, whatever claim carries it
        ("ada@example.com", "mcp profile email", True),
        ("alice", "mcp", False),
        ("alice", "mcp profile", True),
    ],
)
def test_rfc7662_s2_2_oidc_core_s5_4_introspection_names_the_username_only_as_the_tokens_scopes_release_it(
    client, username, scope, released
):
    person = make_user(username, email="ada@example.com")
    token = make_access_token(person, make_client(), scope=scope)
    resource_server = make_resource_server()
    answer = client.post(
        "/o/introspect/", {"token": token}, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    ).json()
    assert answer["active"] is True and answer["sub"] == str(person.pk)
    assert ("username" in answer) is released
    if released:
        assert answer["username"] == username
    else:
        assert "ada@example.com" not in json.dumps(answer)


# --- 5. One name, one value -------------------------------------------------------------------------


DUPLICATE_REDIRECT_URIS = (
    '{"client_name": "dup", "token_endpoint_auth_method": "none",'
    ' "redirect_uris": ["https://good.example/cb"], "redirect_uris": ["https://evil.example/cb"]}'
)
DUPLICATE_NESTED = json.dumps({**AGENT, "token_endpoint_auth_method": "private_key_jwt"})[:-1] + (
    ', "jwks": {"keys": [], "keys": []}}'
)


@pytest.mark.parametrize("body", [DUPLICATE_REDIRECT_URIS, DUPLICATE_NESTED], ids=["top-level", "nested"])
def test_rfc8259_s4_cwe436_rfc7591_s3_2_2_registration_json_naming_a_member_twice_is_refused(client, body):
    answer = client.post("/o/register/", body, content_type="application/json")
    refused = assert_json_error(answer, 400, "invalid_client_metadata")
    assert "more than once" in refused["error_description"]
    assert not Application.objects.filter(registration_source=Application.RegistrationSource.DCR).exists()


def test_rfc8259_s4_cwe436_rfc7592_s2_2_an_update_naming_a_member_twice_is_refused(client):
    registered = register(client, AGENT).json()
    body = json.dumps({**AGENT, "client_id": registered["client_id"]})[:-1] + ', "client_name": "renamed"}'
    answer = client.put(
        registered["registration_client_uri"],
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}",
    )
    assert "client_name" in assert_json_error(answer, 400, "invalid_client_metadata")["error_description"]
    assert Application.objects.get(client_id=registered["client_id"]).name == AGENT["client_name"]
