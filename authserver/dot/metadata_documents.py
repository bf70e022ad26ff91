"""Client ID Metadata Documents that real agents publish: django-oauth-toolkit's fetcher, plus the
choice of client authentication method the document leaves to the authorization server.

DOT registers a metadata-document client only as a public client (``token_endpoint_auth_method``
``"none"``). Some agents prefer another method but list the ones they can fall back to: ChatGPT
publishes ``"token_endpoint_auth_method": "private_key_jwt"`` with
``"token_endpoint_auth_methods_supported": ["none", "private_key_jwt"]``. This module picks
``"none"`` for such documents so they register as the public clients they also are.

A document that can only authenticate with ``private_key_jwt`` and publishes its keys (``jwks_uri``,
https) is a client of that method (RFC 7523 §2.2; the draft allows asymmetric methods): DOT is handed
the document as a public one, and the row it saves is made a ``private_key_jwt`` client with that
``jwks_uri`` (:func:`metadata_document_client_keys`, a ``pre_save`` receiver), so its token requests
must carry an assertion signed by one of those keys (``authserver.client_assertions``).
"""

from contextvars import ContextVar
from urllib.parse import urlsplit

from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher

from authserver.client_assertions import PRIVATE_KEY_JWT

# The only method DOT accepts for a metadata-document client: draft-ietf-oauth-client-id-metadata-document
# rules out shared secrets (none can be established with a document), and DOT does not verify private_key_jwt.
PUBLIC_CLIENT_AUTH_METHOD = "none"

# client_id → jwks_uri of documents just fetched that authenticate with private_key_jwt; read when DOT
# saves the client (in the same call, so in the same context), then forgotten.
_keyed_documents: ContextVar[dict | None] = ContextVar("authserver_keyed_metadata_documents", default=None)


def auth_method_negotiate(*, metadata: dict) -> dict:
    """The document with the client authentication method this server will use for it.

    OpenID Connect RP Metadata Choices §2: ``token_endpoint_auth_methods_supported`` lists every
    method the client can use, so the server may pick one it supports. When that list holds
    ``"none"``, the client is registered as a public client (a copy of the document with
    ``token_endpoint_auth_method: "none"``). Otherwise the document is returned unchanged, and DOT
    refuses any method but ``"none"``: this server never verifies ``private_key_jwt`` assertions,
    so a client that can only authenticate that way cannot be registered.

    Raises :class:`CIMDError` when ``token_endpoint_auth_methods_supported`` is not a list of strings.
    """
    supported = metadata.get("token_endpoint_auth_methods_supported")
    if supported is None:
        return metadata
    if not isinstance(supported, list) or not all(isinstance(method, str) for method in supported):
        raise CIMDError("token_endpoint_auth_methods_supported must be an array of strings")
    if PUBLIC_CLIENT_AUTH_METHOD not in supported:
        return metadata
    return {**metadata, "token_endpoint_auth_method": PUBLIC_CLIENT_AUTH_METHOD}


def private_key_jwt_keys(metadata: dict) -> str | None:
    """The ``jwks_uri`` of a document whose one method is ``private_key_jwt``, or None (RFC 7591 §2:
    ``jwks_uri`` is where such a client's keys are; https only, as every fetch this server makes)."""
    if metadata.get("token_endpoint_auth_method") != PRIVATE_KEY_JWT:
        return None
    jwks_uri = metadata.get("jwks_uri")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https" or len(jwks_uri) > 2000:
        raise CIMDError("a private_key_jwt client must publish its keys at an https jwks_uri")
    return jwks_uri


class MetadataDocumentFetcher(SafeMetadataFetcher):
    """DOT's SSRF-hardened fetch (https only, public addresses only, no redirects, bounded time and
    size), then :func:`auth_method_negotiate` on the document it returns, and a ``private_key_jwt``
    document's keys remembered for the client DOT saves from it."""

    def fetch(self, client_id):
        metadata, max_age = super().fetch(client_id)
        negotiated = auth_method_negotiate(metadata=metadata)
        jwks_uri = private_key_jwt_keys(negotiated)
        if jwks_uri is None:
            return negotiated, max_age
        _keyed_documents.set({client_id: jwks_uri})
        return {**negotiated, "token_endpoint_auth_method": PUBLIC_CLIENT_AUTH_METHOD}, max_age


def metadata_document_client_keys(sender, instance, raw=False, **kwargs) -> None:
    """``pre_save`` of the client model: the client DOT saves from a ``private_key_jwt`` document just
    fetched authenticates with that method and those keys (DOT 3.4.1 saves every such client public)."""
    keyed = _keyed_documents.get()
    if raw or not keyed or instance.client_id not in keyed:
        return
    _keyed_documents.set(None)
    instance.client_type = instance.CLIENT_CONFIDENTIAL
    instance.token_endpoint_auth_method = PRIVATE_KEY_JWT
    instance.jwks_uri = keyed[instance.client_id]
    instance.jwks = {}
    instance.client_secret = ""
    instance.hash_client_secret = False
