"""The OAuth steps an MCP client takes against a live server, over plain HTTP, one function each:
register (RFC 7591), have a person approve a code (PKCE, RFC 7636; resource, RFC 8707), exchange
it, refresh. For tests and benchmarks that need tokens, or one step on its own (to race it).

Django-free on purpose: the benchmarks import it in processes that never set Django up.
"""

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import httpx2

from live.paths import MCP_PATH, REDIRECT_URI
from live.person import Person


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def client_registration(server_url: str, *, name: str = "Test agent", auth_method: str = "none") -> dict:
    """RFC 7591: a client registers itself; returns the registration answer (``client_secret`` too,
    for a confidential client's ``auth_method``)."""
    answer = httpx2.post(
        server_url + "/o/register/",
        json={
            "client_name": name,
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
        },
        timeout=30,
    )
    assert answer.status_code == 201, (answer.status_code, answer.text[:300])
    return answer.json()


def client_register(server_url: str, *, name: str = "Test agent") -> str:
    """RFC 7591: a public client registers itself, as MCP clients do; returns its client_id."""
    return client_registration(server_url, name=name)["client_id"]


def code_obtain(
    server_url: str, person: Person, client_id: str, *, scope: str = "mcp profile", resource: str | None = None
) -> tuple[str, str]:
    """An authorization code the person approved on the real pages, for ``resource`` (the MCP
    endpoint unless named), with its PKCE verifier."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource or server_url + MCP_PATH,
    }
    callback = person.authorize(server_url + "/o/authorize/?" + urlencode(query))
    assert "code" in callback, callback
    return callback["code"], verifier


def code_redeem(http: httpx2.Client, client_id: str, code: str, verifier: str) -> httpx2.Response:
    """The token request for a code, on ``http`` (a client whose base URL is the server)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    return http.post("/o/token/", data=data)


def token_refresh(http: httpx2.Client, client_id: str, refresh_token: str) -> httpx2.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return http.post("/o/token/", data=data)


def tokens_obtain(server_url: str, person: Person, client_id: str, **code_options) -> dict:
    """The whole flow for a registered client: the person approves, the client exchanges the code."""
    code, verifier = code_obtain(server_url, person, client_id, **code_options)
    with httpx2.Client(base_url=server_url, timeout=30) as http:
        answer = code_redeem(http, client_id, code, verifier)
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return answer.json()
