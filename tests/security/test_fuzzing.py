"""Property-based fuzzing (hypothesis) of every endpoint a client talks to, as an attacker probes them:
registration (RFC 7591) and its management (RFC 7592), the token, revocation and introspection
endpoints, and the MCP endpoint's body and headers.

For every generated request: no 5xx, no HTML where JSON is spoken, no stored row changed by a refused
request, and no token or secret in a log line.
"""

import functools
import json
import os
import string
from contextlib import contextmanager
from urllib.parse import quote_plus

import anyio.from_thread
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.paths import MCP_PATH, REDIRECT_URI
from mcpapp.asgi import mcp_asgi_application
from mcpapp.server import build_asgi_app, build_server
from mcpapp.verifier import DotTokenVerifier
from tests.authserver.helpers import AGENT, basic_auth, register
from tests.factories import make_access_token, make_client
from tests.overrides import authserver_settings
from tests.security.helpers import stored_rows

FUZZ = settings(
    # FUZZ_EXAMPLES=5000 for a longer hunt than the suite's.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,  # shared, noisy machines: speed is the benchmarks' business
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any JSON value: what a client can put in any field.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Strings that look like what the fields hold, and the characters that break things.
tricky_text = st.text(
    alphabet=st.characters(blacklist_categories=()) | st.sampled_from("\x00\u202e\u200b\ud800:/?#@%*\\\"'<>"),
    max_size=60,
)
field_values = json_values | tricky_text | st.lists(tricky_text, max_size=3)
METADATA_FIELDS = [
    *AGENT,
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "contacts",
    "scope",
    "client_id",
    "client_secret",
    "jwks",
]
metadata = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([AGENT, {}, {"redirect_uris": AGENT["redirect_uris"]}]),
    st.dictionaries(st.sampled_from(METADATA_FIELDS) | st.text(max_size=10), field_values, max_size=5),
)
# Header values a client can send (no CR, LF or NUL: no HTTP library lets those through).
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"))
authorization = st.one_of(
    st.none(),
    header_text,
    st.builds(
        lambda scheme, value: f"{scheme} {value}", st.sampled_from(["Bearer", "Basic", "bearer", "DPoP"]), header_text
    ),
)


def assert_answer_is_json_and_harmless(response, before: dict, *, ok=(200, 201, 204)) -> None:
    """No 5xx; an error is JSON; a refused request changed nothing stored."""
    status = response.status_code
    assert status < 500, (status, response.content[:300])
    if status >= 400:
        assert response["Content-Type"].startswith("application/json"), (status, response["Content-Type"])
        assert "error" in response.json()
        assert stored_rows() == before
    else:
        assert status in ok, status


@contextmanager
def secrets_kept_out_of_logs(caplog):
    """Collects the secrets a test issues; at the end none of them may appear in any log record."""
    issued: list[str] = []
    caplog.clear()
    yield issued
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    leaked = [secret for secret in issued if secret and secret in logged]
    assert not leaked, "secrets in the log"


@pytest.mark.django_db
@authserver_settings(REGISTRATION_RATE_LIMIT=1_000_000)
@FUZZ
@given(body=metadata)
def test_registration_takes_any_json_metadata_without_crashing_rfc7591_3_2_2(client, caplog, body):
    with secrets_kept_out_of_logs(caplog) as issued:
        before = stored_rows()
        response = register(client, body)
        assert_answer_is_json_and_harmless(response, before)
        if response.status_code == 201:
            answer = response.json()
            issued += [answer["registration_access_token"], answer.get("client_secret", "")]
            assert answer["response_types"] == ["code"]
        else:
            assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


@pytest.mark.django_db
@authserver_settings(REGISTRATION_RATE_LIMIT=1_000_000)
@FUZZ
@given(
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-16", ""])
    | header_text,
)
def test_registration_takes_any_bytes_without_crashing_rfc7591_3_1(client, body, content_type):
    before = stored_rows()
    response = client.generic("POST", "/o/register/", body, content_type=content_type)  # the bytes as they are
    assert_answer_is_json_and_harmless(response, before)


@pytest.mark.django_db
@authserver_settings(REGISTRATION_RATE_LIMIT=1_000_000)
@FUZZ
@given(
    method=st.sampled_from(["get", "put", "delete"]),
    body=metadata,
    credentials=st.sampled_from(["own", "other", "none", "garbage"]),
)
def test_registration_management_takes_any_request_without_crashing_rfc7592_2(
    client, caplog, method, body, credentials
):
    with secrets_kept_out_of_logs(caplog) as issued:
        mine, other = register(client, AGENT).json(), register(client, AGENT).json()
        issued += [mine["registration_access_token"], other["registration_access_token"]]
        token = {
            "own": mine["registration_access_token"],
            "other": other["registration_access_token"],
            "none": None,
            "garbage": "x" * 30,
        }[credentials]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        url = f"/o/register/{mine['client_id']}/"
        before = stored_rows()
        if method == "put":
            response = client.put(url, json.dumps(body), content_type="application/json", **headers)
        else:
            response = getattr(client, method)(url, **headers)
        assert_answer_is_json_and_harmless(response, before)
        if credentials != "own":
            assert response.status_code == 401
        if response.status_code == 200:
            issued.append(response.json()["registration_access_token"])


OAUTH_PARAMETERS = [
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "client_id",
    "client_secret",
    "refresh_token",
    "resource",
    "scope",
    "token",
    "token_type_hint",
]
form_bodies = st.lists(
    st.tuples(
        st.sampled_from(OAUTH_PARAMETERS) | st.text(max_size=10),
        tricky_text
        | st.sampled_from(
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "password",
                "CLIENT_ID",
                REDIRECT_URI,
            ]
        ),
    ),
    max_size=8,
)


def form_request(client, path: str, fields: list[tuple[str, str]], authorization_header: str | None, client_id: str):
    """A form POST from an OAuth client, with ``CLIENT_ID`` standing for ``client_id``, a real client's."""
    data = [(name, client_id if value == "CLIENT_ID" else value) for name, value in fields]
    body = "&".join(f"{_quote(name)}={_quote(value)}" for name, value in data)
    headers = {"HTTP_AUTHORIZATION": authorization_header} if authorization_header is not None else {}
    return client.post(path, body, content_type="application/x-www-form-urlencoded", **headers)


def _quote(text: str) -> str:
    return quote_plus(text.encode("utf-8", "surrogatepass"))


@pytest.mark.django_db
@FUZZ
@given(
    path=st.sampled_from(["/o/token/", "/o/revoke_token/", "/o/introspect/"]),
    fields=form_bodies,
    authorization_header=authorization,
)
def test_token_revocation_and_introspection_take_any_form_without_crashing_rfc6749_5_2(
    client, caplog, alice, path, fields, authorization_header
):
    with secrets_kept_out_of_logs(caplog) as issued:
        app = make_client()
        live_token = make_access_token(alice, app)
        issued.append(live_token)
        before = stored_rows()
        response = form_request(client, path, fields, authorization_header, app.client_id)
        assert_answer_is_json_and_harmless(response, before)
        if path == "/o/revoke_token/" and response.status_code == 200:
            # RFC 7009 §2.2: 200 for an unknown token too; nothing this request could not revoke changed.
            assert stored_rows() == before
        if path == "/o/introspect/":
            # Nobody here may introspect: every caller is refused (RFC 7662 §2.1).
            assert response.status_code in (400, 401, 405), response.status_code


@pytest.mark.django_db
@FUZZ
@given(authorization_header=authorization, basic_user=st.text(max_size=20), basic_secret=st.text(max_size=20))
def test_introspection_never_answers_a_caller_it_has_not_allowed_rfc7662_2_1(
    client, alice, authorization_header, basic_user, basic_secret
):
    token = make_access_token(alice, make_client())
    for headers in (
        {"HTTP_AUTHORIZATION": authorization_header} if authorization_header else {},
        basic_auth(basic_user, basic_secret),
    ):
        response = client.post("/o/introspect/", {"token": token}, **headers)
        assert response.status_code == 401
        assert "active" not in response.json()


# --- The MCP endpoint ------------------------------------------------------------------------------


@contextmanager
def mcp_endpoint():
    """The project's ASGI application with its lifespan running, and a function sending it one
    request (``httpx2.AsyncClient.request``'s arguments) from this thread."""
    app = mcp_asgi_application(mcp_application=build_asgi_app(build_server(), verifier=DotTokenVerifier()))
    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
            try:
                yield lambda method, **kwargs: portal.call(functools.partial(http.request, method, MCP_PATH, **kwargs))
            finally:
                portal.call(http.aclose)


def assert_mcp_answer_is_harmless(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    content_type = response.headers.get("content-type", "")
    assert "html" not in content_type, content_type
    if response.status_code >= 400 and response.content:
        assert content_type.startswith("application/json"), content_type


jsonrpc_messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values},
    optional={
        "id": st.integers() | st.text(max_size=10) | json_values,
        "method": st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "resources/read", "prompts/get"])
        | st.text(max_size=20),
        "params": json_values
        | st.fixed_dictionaries(
            {"name": st.sampled_from(["whoami", "list_notes", "create_note"]) | st.text(max_size=10)},
            optional={"arguments": json_values},
        ),
    },
)


@pytest.mark.django_db(transaction=True)
def test_the_mcp_endpoint_takes_any_body_without_crashing(alice, caplog):
    token = make_access_token(alice, make_client())
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}

    with mcp_endpoint() as send, secrets_kept_out_of_logs(caplog) as issued:
        issued.append(token)

        @FUZZ
        @given(
            body=jsonrpc_messages.map(json.dumps).map(str.encode)
            | st.lists(jsonrpc_messages, max_size=3).map(json.dumps).map(str.encode)
            | st.binary(max_size=200)
        )
        def any_body(body):
            response = send("POST", content=body, headers={**headers, "Content-Type": "application/json"})
            assert_mcp_answer_is_harmless(response)

        any_body()


HEADER_NAMES = [
    "Authorization",
    "Origin",
    "Host",
    "Content-Type",
    "Accept",
    "Mcp-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
]


@pytest.mark.django_db(transaction=True)
def test_the_mcp_endpoint_takes_any_headers_without_crashing(alice, caplog):
    token = make_access_token(alice, make_client())
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()

    with mcp_endpoint() as send, secrets_kept_out_of_logs(caplog) as issued:
        issued.append(token)

        @FUZZ
        @given(
            method=st.sampled_from(["POST", "GET", "DELETE", "OPTIONS", "PUT"]),
            extra=st.lists(
                st.tuples(
                    st.sampled_from(HEADER_NAMES)
                    | st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12),
                    header_text,
                ),
                max_size=6,
            ),
            with_token=st.booleans(),
        )
        def any_headers(method, extra, with_token):
            headers = [("Accept", "application/json, text/event-stream"), ("Content-Type", "application/json")]
            if with_token and method != "GET":  # a GET with a valid token may open an endless event stream
                headers.append(("Authorization", f"Bearer {token}"))
            headers += [(name, value.encode("latin-1")) for name, value in extra]  # as sent on the wire
            response = send(method, content=ping if method == "POST" else b"", headers=headers)
            assert_mcp_answer_is_harmless(response)
            if len([name for name, _ in headers if name.lower() == "authorization"]) > 1:
                assert response.status_code in (400, 403)  # RFC 6750 §2: one credential (or a refused Origin/Host)

        any_headers()
