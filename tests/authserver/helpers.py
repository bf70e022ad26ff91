import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings

from live.oauth_flow import pkce_pair  # noqa: F401 - one PKCE pair for in-process and live tests
from live.paths import REDIRECT_URI

# The issuer (and `iss`) of the test client's requests, which come to http://testserver.
ISSUER = "http://testserver"

# What an MCP client registers (RFC 7591), as Claude Code and the SDKs do.
AGENT = {
    "client_name": "Claude-style agent",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def register(client, metadata):
    """RFC 7591 registration of ``metadata`` (a dict, sent as JSON)."""
    return client.post("/o/register/", json.dumps(metadata), content_type="application/json")


def basic_auth(client_id: str, secret: str) -> dict:
    """RFC 6749 §2.3.1: client_secret_basic, as the test client's extra headers."""
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def authorize_url(client, challenge, **overrides) -> str:
    """An authorization request for ``client`` (an Application, or a client_id string)."""
    params = {
        "response_type": "code",
        "client_id": getattr(client, "client_id", client),
        "redirect_uri": REDIRECT_URI,
        "scope": "mcp profile",
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return "/o/authorize/?" + urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)


def redirect_params(response) -> dict[str, str]:
    """The query parameters of a redirect to the client's redirect URI."""
    location = response["Location"]
    assert location.startswith(REDIRECT_URI), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def site_url_settings(site_url: str) -> dict:
    """The settings SITE_URL=<site_url> produces (config/settings.py), for override_settings."""
    return {
        "OAUTH2_PROVIDER": {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": site_url},
        "ALLOWED_HOSTS": [*settings.ALLOWED_HOSTS, urlsplit(site_url).hostname],
    }


def consent_answer(page, *, allow: bool = True, untick: tuple[str, ...] = (), tick: tuple[str, ...] = ()) -> dict:
    """What the browser posts when the person answers the consent ``page``: the asked scopes' boxes
    ticked but ``untick``, the optional ones (unticked on the page) in ``tick`` ticked."""
    context = page.context
    data = {name: value for name, value in context["form"].initial.items() if value is not None}
    data["consent_request"] = context["consent_request"]
    data["scopes"] = [
        *(scope.name for scope in context["asked_scopes"] if not scope.base and scope.name not in untick),
        *tick,
    ]
    if allow:
        data["allow"] = "Authorize"
    return data


def approved_code(client, app) -> tuple[str, str]:
    """A code the signed-in person approved for ``app`` (an Application, or a client_id), on the
    consent page when there is one, and its PKCE verifier."""
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge)
    response = client.get(url)
    if response.status_code == 200:  # the consent page
        response = client.post(url, consent_answer(response))
    return redirect_params(response)["code"], verifier


def exchange_code(client, app, code, verifier, **extra):
    """The client's token request for an authorization ``code`` (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    return client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": app.client_id,
            "code_verifier": verifier,
            **extra,
        },
    )


def stored_access_token(raw_token: str):
    """The access-token row for ``raw_token``, found as DOT finds it: by checksum (stored hashed)."""
    from oauth2_provider.models import get_access_token_model

    from authserver.models import token_checksum

    return get_access_token_model().objects.get(token_checksum=token_checksum(raw_token))


def connect(client, app, *, scope: str = "mcp profile", redirect_uri: str = REDIRECT_URI, **token_extra) -> dict:
    """The whole authorization code flow for the signed-in person, who allows everything asked.
    ``token_extra``: more token request parameters (a confidential client's ``client_secret``).

    Returns the token endpoint's JSON answer.
    """
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, scope=scope, redirect_uri=redirect_uri)
    response = client.get(url)
    if response.status_code == 200:  # the consent page
        response = client.post(url, consent_answer(response))
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    return exchange_code(client, app, code, verifier, redirect_uri=redirect_uri, **token_extra).json()


def refresh(client, app, refresh_token: str):
    return client.post(
        "/o/token/", {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id}
    )


def assert_authorize_refuses(client, client_id: str, *, redirect_uri: str = REDIRECT_URI) -> None:
    """What a person sees when a metadata-document client_id cannot be trusted: an error page,
    never a redirect to the client, and no client row made for it.

    Signs a person in first when nobody is.
    """
    from oauth2_provider.models import get_application_model

    from tests.factories import make_user

    if "_auth_user_id" not in client.session:
        client.force_login(make_user("visitor"))
    _verifier, challenge = pkce_pair()
    response = client.get(authorize_url(client_id, challenge, redirect_uri=redirect_uri))
    assert response.status_code in (400, 401)
    assert "Location" not in response
    assert not get_application_model().objects.filter(client_id=client_id).exists()


class KeysAt:
    """A stand-in for the metadata-document fetcher (DOT's CIMD_METADATA_FETCHER): serves JWK Sets by URL."""

    documents: dict = {}
    fetched: list = []

    def fetch(self, url):
        from oauth2_provider.cimd import CIMDError

        self.fetched.append(url)
        if url not in self.documents:
            raise CIMDError("could not fetch client_id document: connection refused")
        return self.documents[url], 60
