"""An MCP client application built on the MCP Python SDK's OAuth client, with a person at the browser."""

import contextlib

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from live.paths import REDIRECT_URI
from live.person import Person


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Agent:
    """An MCP client application: the SDK's OAuth provider, with a person at the browser.

    With ``client_metadata_url`` the application has a Client ID Metadata Document published at that
    https URL (see :meth:`metadata_document`); the SDK then uses the URL as its client_id wherever the
    authorization server advertises ``client_id_metadata_document_supported``, instead of registering.
    """

    def __init__(
        self,
        server_url: str,
        person: Person,
        *,
        client_name: str = "SDK test agent",
        client_metadata_url: str | None = None,
    ):
        self.server_url = server_url
        self.person = person
        self.storage = MemoryStorage()
        self.callbacks: list[dict[str, str]] = []
        # (method, path, status, WWW-Authenticate) of every HTTP response the agent received.
        self.responses: list[tuple[str, str, int, str]] = []
        self.oauth = OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name=client_name,
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self._open_browser,
            callback_handler=self._receive_callback,
            client_metadata_url=client_metadata_url,
        )

    def metadata_document(self) -> dict:
        """The Client ID Metadata Document this application publishes at its ``client_metadata_url``:
        its client metadata, and as ``client_id`` that URL, as draft-ietf-oauth-client-id-metadata-document
        requires of a document."""
        metadata = self.oauth.context.client_metadata.model_dump(mode="json", exclude_none=True)
        return {**metadata, "client_id": self.oauth.context.client_metadata_url}

    async def _open_browser(self, authorization_url: str) -> None:
        self.authorization_url = authorization_url
        self.callbacks.append(await anyio.to_thread.run_sync(self.person.authorize, authorization_url))

    async def _receive_callback(self) -> AuthorizationCodeResult:
        params = self.callbacks[-1]
        assert params.get("_redirect_uri") == REDIRECT_URI
        if "error" in params:  # the person said no (or the server refused): nothing to exchange
            raise PermissionError(f"authorization failed: {params['error']}")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    def use_registered_client(self, client_id: str) -> None:
        """Use a client the operator registered instead of registering itself."""
        self.storage.client_info = OAuthClientInformationFull(
            client_id=client_id,
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        )

    @contextlib.asynccontextmanager
    async def connect(self, *, mode: str = "legacy", sse: bool = False):
        """One MCP client session with the server (protocol ``mode``, Streamable HTTP or legacy SSE)."""

        async def note(response):
            challenge = response.headers.get("www-authenticate", "")
            self.responses.append((response.request.method, response.request.url.path, response.status_code, challenge))

        async with httpx2.AsyncClient(auth=self.oauth, timeout=30, event_hooks={"response": [note]}) as http:
            if sse:
                transport = sse_client(self.server_url, auth=self.oauth)
            else:
                transport = streamable_http_client(self.server_url, http_client=http)
            async with Client(transport, mode=mode) as client:
                yield client

    def requests(self, method: str, path: str) -> list[int]:
        """The statuses of the responses to the agent's ``method`` requests to ``path``."""
        return [code for m, p, code, _challenge in self.responses if (m, p) == (method, path)]

    def challenges(self, status: int) -> list[str]:
        """The WWW-Authenticate challenges of the responses with ``status``."""
        return [challenge for _method, _path, code, challenge in self.responses if code == status]
