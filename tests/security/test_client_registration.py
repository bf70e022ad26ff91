"""RFC 7591 registration and RFC 7592 management as a malicious self-registering client uses them: a name
that reads as something else, bodies built to crash the server, a secret answer a cache would keep,
an update that changes what kind of client it is."""

import json

import pytest
from django.core.exceptions import ValidationError
from oauth2_provider.models import get_application_model

from live.paths import REDIRECT_URI
from tests.authserver.helpers import AGENT, assert_authorize_refuses, basic_auth, pkce_pair, register
from tests.factories import make_client, make_user
from tests.security.helpers import assert_json_error, stored_rows

pytestmark = pytest.mark.django_db

SPOOFING = {
    "right-to-left override": "Safe App\u202egnp.exe",
    "right-to-left isolate": "Safe App\u2067exe.png",
    "left-to-right mark": "Claude\u200e",
    "zero-width space": "Cla\u200bude",
    "zero-width joiner": "Cla\u200dude",
    "byte order mark": "\ufeffClaude",
    "hangul filler": "Claude\u3164",
    "NUL": "Claude\x00",
    "newline": "Claude\nOfficial",
    "escape": "Claude\x1b[31m",
    "line separator": "Claude\u2028",
    "private use": "Claude \uf8ff",
    "lone surrogate": "Claude\ud800",
}


def management(client, registration, method="get", body=None, **extra):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {registration['registration_access_token']}", **extra}
    url = f"/o/register/{registration['client_id']}/"
    if method == "get":
        return client.get(url, **auth)
    return client.put(url, json.dumps(body), content_type="application/json", **auth)


@pytest.mark.parametrize("name", SPOOFING.values(), ids=SPOOFING.keys())
def test_a_client_name_that_reads_as_something_else_is_refused_rfc7591_3_2_2(client, name):
    before = stored_rows()
    body = assert_json_error(register(client, {**AGENT, "client_name": name}), 400, "invalid_client_metadata")
    assert body["error_description"].startswith("client_name:")
    assert stored_rows() == before


@pytest.mark.parametrize("field", ["software_id", "software_version", "contacts", "client_uri"])
def test_every_displayable_metadata_field_is_held_to_the_same_rule_rfc7591_3_2_2(client, field):
    value = "Safe App\u202egnp.exe"
    value = [value] if field == "contacts" else value
    body = assert_json_error(register(client, {**AGENT, field: value}), 400, "invalid_client_metadata")
    assert body["error_description"].startswith(f"{field}:")


def test_an_update_cannot_smuggle_a_spoofed_name_in_rfc7592_2_2(client):
    registration = register(client, AGENT).json()
    response = management(client, registration, "put", {**AGENT, "client_name": SPOOFING["right-to-left override"]})
    assert_json_error(response, 400, "invalid_client_metadata")
    assert get_application_model().objects.get(client_id=registration["client_id"]).name == AGENT["client_name"]


def test_an_operator_cannot_save_a_spoofed_name_either():
    app = make_client()
    app.name = SPOOFING["right-to-left override"]
    with pytest.raises(ValidationError) as refused:
        app.full_clean()
    assert "name" in refused.value.message_dict


def test_a_spoofed_name_stored_before_the_rule_is_shown_isolated_on_the_consent_page(client):
    # Rows written before the rule (or by code that skipped validation) may still hold one.
    app = make_client()
    get_application_model().objects.filter(pk=app.pk).update(name="Safe App\u202egnp.exe")
    client.force_login(make_user())
    _verifier, challenge = pkce_pair()
    page = client.get(
        f"/o/authorize/?response_type=code&client_id={app.client_id}"
        f"&redirect_uri=http://127.0.0.1:33418/callback&code_challenge={challenge}"
        "&code_challenge_method=S256&state=s"
    ).content.decode()
    assert "<bdi>Safe App\u202egnp.exe</bdi>" in page
    title = page.split("<title>")[1].split("</title>")[0]
    assert "\u202e" not in title and "Safe Appgnp.exe" in title


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://app.example\u202e/cb", "https://аpp.example/cb", "https://app.example/c\u200bb"],
    ids=["bidi-override", "cyrillic-a", "zero-width-space"],
)
def test_a_redirect_uri_that_is_not_ascii_is_refused_rfc3986_2(client, redirect_uri):
    response = register(client, {**AGENT, "redirect_uris": [redirect_uri]})
    assert_json_error(response, 400, "invalid_redirect_uri")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"client_name": ' + nested(30_000) + "}",
        '{"redirect_uris": ["http://127.0.0.1/cb"], "contacts": ' + nested(30_000) + "}",
        nested(30_000),
    ],
    ids=["nested-name", "nested-ignored-field", "nested-body"],
)
def test_json_nested_thirty_thousand_levels_deep_is_a_400_not_a_500_rfc7591_3_2_2(client, body):
    before = stored_rows()
    response = client.post("/o/register/", body, content_type="application/json")
    assert_json_error(response, 400, "invalid_client_metadata")
    assert stored_rows() == before
    registration = register(client, AGENT).json()
    update = client.put(
        f"/o/register/{registration['client_id']}/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {registration['registration_access_token']}",
    )
    assert_json_error(update, 400, "invalid_client_metadata")


def test_null_means_left_out_rfc7592_2_2(client):
    response = register(client, {**AGENT, "client_name": None, "client_uri": None, "scope": None})
    assert response.status_code == 201, response.content
    assert "client_name" not in response.json()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_a_body_that_is_not_sent_as_json_is_refused_rfc7591_3_1(client, content_type):
    # A cross-site form can post text/plain with the person's cookies; JSON needs a CORS preflight.
    before = stored_rows()
    response = client.post("/o/register/", json.dumps(AGENT), content_type=content_type)
    assert_json_error(response, 415, "invalid_client_metadata")
    assert stored_rows() == before


def test_answers_carrying_a_secret_are_never_cached_rfc6749_5_1(client):
    created = register(client, {**AGENT, "token_endpoint_auth_method": "client_secret_basic"})
    registration = created.json()
    assert registration["client_secret"]
    for answer in (created, management(client, registration), management(client, registration, "put", AGENT_SECRET)):
        assert answer.status_code in (200, 201), answer.content
        assert answer["Cache-Control"] == "no-store"
        assert answer["Pragma"] == "no-cache"


AGENT_SECRET = {**AGENT, "token_endpoint_auth_method": "client_secret_basic"}


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_the_authentication_method_registered_is_echoed_and_the_only_one_honoured_rfc7591_2(client, method):
    registration = register(client, {**AGENT, "token_endpoint_auth_method": method}).json()
    assert registration["token_endpoint_auth_method"] == method
    assert management(client, registration).json()["token_endpoint_auth_method"] == method

    client_id, secret = registration["client_id"], registration["client_secret"]
    refresh = {"grant_type": "refresh_token", "refresh_token": "not-a-token"}
    basic = client.post("/o/token/", refresh, **basic_auth(client_id, secret))
    post = client.post("/o/token/", {**refresh, "client_id": client_id, "client_secret": secret})
    # The registered method gets as far as the (unknown) refresh token; the other one is not a credential.
    honoured, other = (post, basic) if method == "client_secret_post" else (basic, post)
    assert_json_error(honoured, 400, "invalid_grant")
    assert_json_error(other, 401, "invalid_client")


def test_the_answer_echoes_every_registered_field_rfc7591_3_2_1(client):
    metadata = {
        **AGENT,
        "client_uri": "https://agent.example.com",
        "logo_uri": "https://agent.example.com/logo.png",
        "tos_uri": "https://agent.example.com/tos",
        "policy_uri": "https://agent.example.com/privacy",
        "software_id": "agent",
        "software_version": "1.2.3",
        "contacts": ["security@agent.example.com"],
    }
    answer = register(client, metadata).json()
    for name, value in metadata.items():
        assert answer[name] == value, name
    assert answer["client_id_issued_at"] > 0
    assert management(client, answer).json() == answer


def test_an_update_that_leaves_the_method_out_keeps_a_public_client_public_rfc7592_2_2(client):
    registration = register(client, AGENT).json()
    update = {key: value for key, value in AGENT.items() if key != "token_endpoint_auth_method"}
    response = management(client, registration, "put", {**update, "client_name": "Renamed"})
    assert response.status_code == 200, response.content
    assert response.json()["token_endpoint_auth_method"] == "none"
    stored = get_application_model().objects.get(client_id=registration["client_id"])
    assert stored.client_type == "public" and stored.name == "Renamed" and stored.client_secret == ""


@pytest.mark.parametrize(("registered", "asked"), [("none", "client_secret_basic"), ("client_secret_basic", "none")])
def test_an_update_cannot_change_public_into_confidential_or_back_rfc7592_2_2(client, registered, asked):
    registration = register(client, {**AGENT, "token_endpoint_auth_method": registered}).json()
    before = stored_rows()
    response = management(client, registration, "put", {**AGENT, "token_endpoint_auth_method": asked})
    body = assert_json_error(response, 400, "invalid_client_metadata")
    assert body["error_description"].startswith("token_endpoint_auth_method:")
    assert stored_rows() == before


def test_an_update_naming_another_client_id_is_refused_rfc7592_2_2(client):
    registration = register(client, AGENT).json()
    other = register(client, AGENT).json()
    response = management(client, registration, "put", {**AGENT, "client_id": other["client_id"]})
    assert assert_json_error(response, 400, "invalid_client_metadata")["error_description"].startswith("client_id:")


def test_every_refusal_names_the_field(client):
    cases = {
        "client_name": {"client_name": "x" * 201},
        "grant_types": {"grant_types": ["password"]},
        "response_types": {"response_types": ["token"]},
        "token_endpoint_auth_method": {"token_endpoint_auth_method": "private_key_jwt"},
        "redirect_uris": {"redirect_uris": ["javascript:alert(1)"]},
        "contacts": {"contacts": "not-a-list"},
        "client_uri": {"client_uri": "javascript:alert(1)"},
    }
    for field, change in cases.items():
        body = register(client, {**AGENT, **change}).json()
        assert body["error_description"].startswith(f"{field}:"), (field, body)


SPOOFED_DOCUMENT_ID = "https://agent.example.com/spoofed.json"


class SpoofedDocumentFetcher:
    """Serves one Client ID Metadata Document whose name reads backwards (DOT's fetch replaced)."""

    def fetch(self, client_id):
        document = {
            "client_id": SPOOFED_DOCUMENT_ID,
            "client_name": SPOOFING["right-to-left override"],
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        }
        return document, 300


def test_a_metadata_document_with_a_spoofed_name_is_refused_and_nothing_is_stored(client, settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": f"{__name__}.SpoofedDocumentFetcher",
    }
    assert_authorize_refuses(client, SPOOFED_DOCUMENT_ID)
