"""Service clients: automations (a CI job, a backend, a scheduled agent) that get tokens with no person,
by the MCP OAuth client-credentials extension (SEP-1046, ``grant_type=client_credentials``).

An operator makes each one (the admin or ``manage.py create_service_client``): a name, the scopes it
may get, the service user its tools act as, and its credential: a secret (shown once, stored
hashed) or its public keys for ``private_key_jwt`` (RFC 7523 §2.2: no shared secret at all). Its
tokens are bound to the MCP resource (``authserver.request_checks.resource_bind``), never come
with a refresh token (RFC 6749 §4.4.3), and are stored as its service user's.
"""

from django.db import transaction
from django.utils.text import slugify
from oauth2_provider.models import get_access_token_model

from authserver.accounts import account_create
from authserver.models import Application, token_checksum
from authserver.scopes import scope_registry

SERVICE_USERNAME_PREFIX = "service-"


def service_user_create(*, name: str):
    """A dedicated user for a service client, named after it, with no password (it never signs in)."""
    return account_create(username=SERVICE_USERNAME_PREFIX + (slugify(name) or "client"), name=name)


def service_client_create(
    *, name: str, scopes: list[str], user=None, jwks: dict | None = None, jwks_uri: str = ""
) -> tuple[Application, str | None]:
    """A service client, validated, and its secret (None with keys): the only time the secret is seen,
    since only its hash is stored. Without ``user``, a new service user is made for it."""
    with transaction.atomic():
        private_key_jwt = bool(jwks or jwks_uri)
        client = Application(
            name=name,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            allowed_scope=" ".join(scopes),
            token_endpoint_auth_method=(
                Application.AuthMethod.PRIVATE_KEY_JWT
                if private_key_jwt
                else Application.AuthMethod.CLIENT_SECRET_BASIC
            ),
            jwks=jwks or {},
            jwks_uri=jwks_uri,
            skip_authorization=True,
        )
        secret = None if private_key_jwt else client.client_secret
        if user is None:
            user = service_user_create(name=name)
        client.user = user
        client.full_clean()
        client.save()
    return client, secret


def service_client_problem(*, client: Application) -> str | None:
    """Why a client-credentials client an operator made gets no tokens (or fewer scopes than listed),
    or None. A client made only to introspect (``may_introspect``) or to present a trusted IdP's
    identity assertions (which bound its scopes) needs no scopes listed: it is not a service client."""
    if not client.is_service:
        return None
    listed = client.allowed_scope.split()
    if not listed:
        if client.may_introspect or client.trusted_identity_providers.exists():
            return None
        # RFC 6749 §3.3 / §4.4: the token endpoint answers unauthorized_client, never every scope.
        return "it lists no scopes it may get, so it gets no tokens"
    unknown = scope_registry.unknown(listed)
    if unknown:
        return f"it lists scopes this site does not have ({' '.join(unknown)}), which it never gets"
    if client.user_id is None:
        return "it has no service user to act as, so it gets no tokens"
    return None


def service_token_bind_user(*, access_token: str, client) -> None:
    """Store a client-credentials token as its service client's service user's (DOT stores it for none)."""
    get_access_token_model().objects.filter(token_checksum=token_checksum(access_token)).update(user_id=client.user_id)
