"""Rows the tests need, made the way the product makes them."""

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value

from live.paths import MCP_PATH, REDIRECT_URI


def make_user(username="alice", **fields):
    fields.setdefault("email", f"{username}@example.com")
    return get_user_model().objects.create_user(username, password="correct horse battery staple", **fields)


def make_client(*, name="Test agent", redirect_uris=REDIRECT_URI, **fields):
    """A public agent using the authorization-code flow, unless ``fields`` say otherwise."""
    Application = get_application_model()
    fields.setdefault("client_type", Application.CLIENT_PUBLIC)
    fields.setdefault("authorization_grant_type", Application.GRANT_AUTHORIZATION_CODE)
    return Application.objects.create(name=name, redirect_uris=redirect_uris, **fields)


def make_company_agent(*, secret: str, name="Acme agent", **fields):
    """A confidential client an operator made for a company's agent (client_secret_basic, ``secret``):
    what a trusted IdP lists as allowed to present its identity assertions."""
    Application = get_application_model()
    return make_client(
        name=name,
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        **fields,
    )


RESOURCE_SERVER_SECRET = "resource-server-secret-" + "x" * 40


def make_resource_server(*, name="Resource server", secret=RESOURCE_SERVER_SECRET):
    """A confidential client an operator made and allowed to introspect tokens (RFC 7662), with ``secret``
    (client_secret_basic)."""
    return make_company_agent(name=name, secret=secret, may_introspect=True)


def make_access_token(user, client, *, scope="mcp profile email", resource=None, expires_in=3600) -> str:
    """An access token row stored as DOT stores it (hashed); returns the raw token."""
    raw = secrets.token_urlsafe(30)
    token = get_access_token_model()(
        user=user,
        application=client,
        scope=scope,
        resource=resource if resource is not None else ["http://testserver" + MCP_PATH],
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    set_token_value(token, raw)
    token.save()
    return raw
