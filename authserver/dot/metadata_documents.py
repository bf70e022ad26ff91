"""Client ID Metadata Documents that real agents publish: django-oauth-toolkit's fetcher, plus the
choice of client authentication method the document leaves to the authorization server.

DOT registers a metadata-document client only as a public client (``token_endpoint_auth_method``
``"none"``). Some agents prefer another method but list the ones they can fall back to: ChatGPT
publishes ``"token_endpoint_auth_method": "private_key_jwt"`` with
``"token_endpoint_auth_methods_supported": ["none", "private_key_jwt"]``. This module picks
``"none"`` for such documents so they register as the public clients they also are.
"""

from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher

# The only method DOT accepts for a metadata-document client: draft-ietf-oauth-client-id-metadata-document
# rules out shared secrets (none can be established with a document), and DOT does not verify private_key_jwt.
PUBLIC_CLIENT_AUTH_METHOD = "none"


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


class MetadataDocumentFetcher(SafeMetadataFetcher):
    """DOT's SSRF-hardened fetch (https only, public addresses only, no redirects, bounded time and
    size), then :func:`auth_method_negotiate` on the document it returns."""

    def fetch(self, client_id):
        metadata, max_age = super().fetch(client_id)
        return auth_method_negotiate(metadata=metadata), max_age
