"""The scope registry: one list for consent, metadata, tokens and tools, where broad scopes cover narrow ones."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver.scopes import RegistryScopes, Scope, ScopeRegistry, scope_registry
from tests.authserver.helpers import authorize_url, exchange_code, pkce_pair, redirect_params
from tests.factories import make_client, make_user


@pytest.fixture
def registry():
    return ScopeRegistry(
        Scope("mcp", "Use the tools", base=True),
        Scope("files", "Everything about your files", covers=("files:read", "files:write")),
        Scope("files:write", "Change your files", covers=("files:read",)),
        Scope("files:read", "Read your files"),
    )


def test_a_broad_scope_covers_what_it_lists_transitively(registry):
    assert registry.expand(["files"]) == {"files", "files:read", "files:write"}
    assert registry.expand(["files:write"]) == {"files:write", "files:read"}
    assert registry.missing(granted=["mcp", "files"], required=["mcp", "files:read"]) == []


def test_a_narrow_scope_never_covers_the_broad_one(registry):
    assert registry.missing(granted=["mcp", "files:read", "files:write"], required=["mcp", "files"]) == ["files"]


def test_missing_scopes_come_back_in_the_order_they_are_required(registry):
    assert registry.missing(granted=[], required=["files:read", "mcp"]) == ["files:read", "mcp"]


def test_registering_the_same_scope_again_is_harmless(registry):
    registry.register(Scope("files:read", "Read your files"))
    assert registry.names == ["mcp", "files", "files:write", "files:read"]


def test_registering_a_different_scope_under_a_taken_name_is_refused(registry):
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        registry.register(Scope("files:read", "Read and leak your files"))


def test_a_second_base_scope_is_refused(registry):
    with pytest.raises(ImproperlyConfigured, match="second base scope"):
        registry.register(Scope("other", "Another server", base=True))


@pytest.mark.parametrize("name", ["has space", 'quote"d', "back\\slash", ""])
def test_a_name_outside_rfc_6749_scope_syntax_is_refused(registry, name):
    with pytest.raises(ImproperlyConfigured, match="RFC 6749"):
        registry.register(Scope(name, "Bad"))


def test_django_oauth_toolkit_sees_the_registry_with_apps_scopes_and_defaults_to_the_base_scope():
    backend = RegistryScopes()
    assert backend.get_all_scopes()["notes:read"] == "Read your notes"
    assert set(backend.get_available_scopes()) == set(scope_registry.names)
    assert backend.get_default_scopes() == ["mcp"]


@pytest.mark.django_db
def test_an_authorization_request_without_scope_gets_the_base_scope_only(client):
    app = make_client(skip_authorization=True)
    client.force_login(make_user("alice"))
    verifier, challenge = pkce_pair()
    response = client.get(authorize_url(app, challenge, scope=None))
    assert exchange_code(client, app, redirect_params(response)["code"], verifier).json()["scope"] == "mcp"


@pytest.mark.django_db
def test_an_unregistered_scope_is_refused_with_invalid_scope(client):
    app = make_client()
    client.force_login(make_user("alice"))
    _verifier, challenge = pkce_pair()
    response = client.get(authorize_url(app, challenge, scope="mcp notes:delete"))
    assert redirect_params(response)["error"] == "invalid_scope"
