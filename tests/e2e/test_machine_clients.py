"""Agents without a person and companies with an IdP, with the MCP Python SDK's own providers against
live servers: client credentials with a secret and with private_key_jwt (SEP-1046, RFC 7523 §2.2), and
enterprise-managed authorization (SEP-990) between two instances of this project, one the other's
trusted identity provider."""

import json
import shutil
import subprocess

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from live.keys import KeyPair
from live.oauth_flow import code_obtain
from live.paths import MCP_PATH, REDIRECT_URI
from live.person import Person
from live.server import PROJECT_DIR
from tests.conftest import PASSWORD, start_server_with_alice
from tests.e2e.agent import MemoryStorage

ENTERPRISE_MANAGED_AUTHORIZATION = "io.modelcontextprotocol/enterprise-managed-authorization"


def whoami_with(server_url: str, auth) -> dict:
    async def call():
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            async with Client(streamable_http_client(server_url + MCP_PATH, http_client=http)) as client:
                # The MCP server says its authorization server takes ID-JAGs (SEP-990, SEP-2133 extensions).
                assert ENTERPRISE_MANAGED_AUTHORIZATION in (client.server_capabilities.extensions or {})
                return (await client.call_tool("whoami", {})).structured_content

    return anyio.run(call)


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups: the SDK's task groups wrap what the server said."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


def shell(server, code: str) -> dict:
    """Run ``code`` in the server's ``manage.py shell``; it prints one JSON object, returned."""
    return json.loads(server.manage("shell", "-c", code).strip().splitlines()[-1])


def service_client_make(server, name: str, *, jwks: dict | None = None) -> dict:
    return shell(
        server,
        "import json\n"
        "from authserver.service_clients import service_client_create\n"
        f"c, s = service_client_create(name={name!r}, scopes=['mcp', 'profile'], jwks={jwks!r})\n"
        "print(json.dumps({'client_id': c.client_id, 'secret': s}))",
    )


def test_sdk_client_credentials_provider_calls_tools_as_the_service(running_server):
    made = service_client_make(running_server, "Nightly report")
    auth = ClientCredentialsOAuthProvider(
        server_url=running_server.url + MCP_PATH,
        storage=MemoryStorage(),
        client_id=made["client_id"],
        client_secret=made["secret"],
        scope="mcp profile",
        issuer=running_server.url,
    )
    identity = whoami_with(running_server.url, auth)
    assert identity["acting_as"] == "service" and identity["service"] == "Nightly report"
    assert identity["username"] == "service-nightly-report" and identity["scope"] == "mcp profile"


def test_sdk_private_key_jwt_provider_calls_tools_with_no_secret(running_server):
    key = KeyPair.make("ES256")
    made = service_client_make(running_server, "Key holder", jwks=key.jwks)
    assert made["secret"] is None
    signer = SignedJWTParameters(
        issuer=made["client_id"], subject=made["client_id"], signing_key=key.private_pem, signing_algorithm="ES256"
    )
    auth = PrivateKeyJWTOAuthProvider(
        server_url=running_server.url + MCP_PATH,
        storage=MemoryStorage(),
        client_id=made["client_id"],
        assertion_provider=signer.create_assertion_provider(),
        scope="mcp profile",
        issuer=running_server.url,
    )
    identity = whoami_with(running_server.url, auth)
    assert identity["acting_as"] == "service" and identity["service"] == "Key holder"


@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory):
    """A second instance of this project: the company's identity provider, where alice works."""
    server = start_server_with_alice(tmp_path_factory, "idp")
    yield server
    server.stop()


SECRET = "cross-app-access-secret-" + "x" * 32


def idp_trust(server, *, trusted: bool) -> None:
    """The operator ticks or unticks "trusted" on the IdP in the admin."""
    shell(
        server,
        "from authserver.models import TrustedIdentityProvider\n"
        f"TrustedIdentityProvider.objects.update(is_active={trusted!r})\nprint('{{}}')",
    )


@pytest.fixture(scope="module")
def cross_app(running_server, identity_provider) -> dict:
    """Two instances set up for Cross App Access, as their operators would, and alice signed in at the IdP."""
    resource_as, idp = running_server, identity_provider
    # At the MCP server's authorization server: the agent's client, and the IdP it trusts for it.
    agent = shell(
        resource_as,
        "import json, urllib.request\n"
        "from authserver.models import Application, TrustedIdentityProvider\n"
        f"agent = Application.objects.create(name='Acme agent', redirect_uris='', client_secret={SECRET!r},\n"
        "    client_type='confidential', authorization_grant_type='client-credentials',\n"
        # The TypeScript SDK's CrossAppAccessProvider authenticates with client_secret_basic only.
        "    token_endpoint_auth_method='client_secret_basic')\n"
        f"keys = json.load(urllib.request.urlopen({idp.url + '/.well-known/jwks.json'!r}))\n"
        f"provider = TrustedIdentityProvider.objects.create(name='Acme IdP', issuer={idp.url!r}, jwks=keys,\n"
        "    match_by='sub')\n"
        "provider.clients.add(agent)\n"
        "print(json.dumps({'client_id': agent.client_id}))",
    )
    # This project as an IdP never asserts a verified address (it verifies none), so the operator links
    # alice's account at the IdP (its `sub`: her id there) to her account here (OpenID Connect Core §5.7).
    alice_at_idp = shell(
        idp,
        "import json\nfrom django.contrib.auth import get_user_model\n"
        "print(json.dumps({'sub': str(get_user_model().objects.get(username='alice').pk)}))",
    )
    shell(
        resource_as,
        "from django.contrib.auth import get_user_model\n"
        "from authserver.models import IdentityLink, TrustedIdentityProvider\n"
        "IdentityLink.objects.create(provider=TrustedIdentityProvider.objects.get(name='Acme IdP'),\n"
        f"    subject={alice_at_idp['sub']!r}, user=get_user_model().objects.get(username='alice'))\n"
        "print('{}')",
    )
    # At the IdP: the company's chat app, which may ask for ID-JAGs for that MCP server.
    chat = shell(
        idp,
        "import json\n"
        "from authserver.models import Application, AssertionAudience\n"
        f"chat = Application.objects.create(name='Acme chat', redirect_uris={REDIRECT_URI!r},\n"
        f"    client_secret={SECRET!r}, client_type='confidential', authorization_grant_type='authorization-code',\n"
        "    token_endpoint_auth_method='client_secret_post', skip_authorization=True)\n"
        f"AssertionAudience.objects.create(name='Notes', client=chat, audience={resource_as.url!r},\n"
        f"    resource={resource_as.url + MCP_PATH!r}, remote_client_id={agent['client_id']!r},\n"
        "    allowed_scope='mcp profile')\n"
        "print(json.dumps({'client_id': chat.client_id}))",
    )
    # Alice signs in to the company's chat app once (OpenID Connect at the IdP); it keeps her ID token.
    code, verifier = code_obtain(
        idp.url, Person("alice", PASSWORD), chat["client_id"], scope="openid mcp", resource=idp.url + MCP_PATH
    )
    tokens = httpx2.post(
        idp.url + "/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": chat["client_id"],
            "client_secret": SECRET,
            "code_verifier": verifier,
        },
    ).json()
    return {"agent": agent["client_id"], "chat": chat["client_id"], "id_token": tokens["id_token"]}


def test_cross_app_access_between_two_instances_sep990(running_server, identity_provider, cross_app):
    resource_as, idp = running_server, identity_provider
    exchanges = []

    async def id_jag_from_the_idp(audience: str, resource: str) -> str:
        # ...and the chat app exchanges her ID token for an ID-JAG for the MCP server (RFC 8693).
        async with httpx2.AsyncClient(timeout=30) as http:
            answer = await http.post(
                idp.url + "/o/token/",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
                    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                    "subject_token": cross_app["id_token"],
                    "audience": audience,
                    "resource": resource,
                    "scope": "mcp profile",
                    "client_id": cross_app["chat"],
                    "client_secret": SECRET,
                },
            )
        exchanges.append(answer.status_code)
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    # The MCP SDK's SEP-990 provider presents it at the MCP server's authorization server: no browser.
    def sep990_provider():
        return IdentityAssertionOAuthProvider(
            server_url=resource_as.url + MCP_PATH,
            storage=MemoryStorage(),
            client_id=cross_app["agent"],
            client_secret=SECRET,
            issuer=resource_as.url,
            assertion_provider=id_jag_from_the_idp,
            scope="mcp profile",
            token_endpoint_auth_method="client_secret_basic",  # as the agent's client registered
        )

    identity = whoami_with(resource_as.url, sep990_provider())
    assert exchanges == [200]
    # alice at the IdP is alice here (by the link the operator made), acting as herself.
    assert identity["acting_as"] == "person" and identity["username"] == "alice"
    assert identity["client_id"] == cross_app["agent"] and identity["scope"] == "mcp profile"
    # The IdP disabled in the admin: the next grant is refused at once.
    idp_trust(resource_as, trusted=False)
    try:
        with pytest.raises(BaseException) as refused:
            whoami_with(resource_as.url, sep990_provider())
    finally:
        idp_trust(resource_as, trusted=True)
    assert any("may not present assertions of that issuer" in str(error) for error in leaf_errors(refused.value))
    assert exchanges == [200, 200]


# --- The TypeScript SDK 2.x client's providers (tests/interop/typescript_sdk_2/machine.mjs) ----------

TS_CLIENT_DIR = PROJECT_DIR / "tests" / "interop" / "typescript_sdk_2"


def run_ts_client(mode: str, settings: dict) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is needed (bin/test installs Debian's nodejs)"
    assert (TS_CLIENT_DIR / "node_modules").exists(), "run `npm ci --prefix tests/interop/typescript_sdk_2`"
    done = subprocess.run(
        [node, "machine.mjs", mode, json.dumps(settings)],
        cwd=TS_CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["whoami"]


def test_typescript_sdk_client_credentials_and_private_key_jwt_providers(running_server):
    made = service_client_make(running_server, "TS report")
    identity = run_ts_client(
        "client-credentials",
        {
            "server": running_server.url,
            "clientId": made["client_id"],
            "clientSecret": made["secret"],
            "scope": "mcp profile",
        },
    )
    assert identity["acting_as"] == "service" and identity["service"] == "TS report"
    key = KeyPair.make("RS256")
    keyed = service_client_make(running_server, "TS signer", jwks=key.jwks)
    identity = run_ts_client(
        "private-key-jwt",
        {
            "server": running_server.url,
            "clientId": keyed["client_id"],
            "privateKeyPem": key.private_pem,
            "algorithm": "RS256",
            "scope": "mcp profile",
        },
    )
    assert identity["acting_as"] == "service" and identity["service"] == "TS signer"


def test_typescript_sdk_cross_app_access_provider_sep990(running_server, identity_provider, cross_app):
    identity = run_ts_client(
        "cross-app-access",
        {
            "server": running_server.url,
            "clientId": cross_app["agent"],
            "clientSecret": SECRET,
            "scope": "mcp profile",
            "idp": {
                "tokenEndpoint": identity_provider.url + "/o/token/",
                "idToken": cross_app["id_token"],
                "clientId": cross_app["chat"],
                "clientSecret": SECRET,
            },
        },
    )
    assert identity["acting_as"] == "person" and identity["username"] == "alice"
    assert identity["client_id"] == cross_app["agent"]
