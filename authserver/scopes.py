"""The one registry of OAuth scopes: name, what the consent page tells the person, and what covers what.

The project's own scopes are registered here; an installed app registers its scopes next to the
MCP tools that need them (in its ``mcp_tools.py``, see ``mcpapp.registry``). django-oauth-toolkit
reads the registry through ``RegistryScopes`` (its ``SCOPES_BACKEND_CLASS``), so the consent page,
the metadata documents, the token endpoint and the MCP endpoint all agree on one list.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


@dataclass(frozen=True)
class Scope:
    name: str
    # What the consent page and "Connected apps" tell the person this scope lets a client do.
    description: str
    # The base scope is needed to use the MCP endpoint at all (and is what a 401 challenge asks for).
    base: bool = False
    # Narrower scopes this one includes: a token with `notes` may do what `notes:read` allows.
    covers: tuple[str, ...] = ()


class ScopeRegistry:
    """Scopes by name, in registration order (the order the consent page lists them)."""

    def __init__(self, *scopes: Scope):
        self._scopes: dict[str, Scope] = {}
        self._base: Scope | None = None  # asked for by every MCP request: found once, not each time
        self.register(*scopes)

    def register(self, *scopes: Scope) -> None:
        """Add ``scopes``. Registering the same definition twice is harmless; a different one under
        a name already taken is a configuration error, as is a second base scope."""
        for scope in scopes:
            if not SCOPE_TOKEN.match(scope.name):
                raise ImproperlyConfigured(f"{scope.name!r} is not a valid OAuth scope name (RFC 6749 §3.3)")
            existing = self._scopes.get(scope.name)
            if existing is not None and existing != scope:
                raise ImproperlyConfigured(f"Scope {scope.name!r} is registered twice with different definitions")
            if scope.base and any(other.base and other.name != scope.name for other in self._scopes.values()):
                raise ImproperlyConfigured(f"Scope {scope.name!r} cannot be a second base scope")
            self._scopes[scope.name] = scope
            if scope.base:
                self._base = scope

    def __contains__(self, name: str) -> bool:
        return name in self._scopes

    def __getitem__(self, name: str) -> Scope:
        return self._scopes[name]

    def __iter__(self):
        return iter(self._scopes.values())

    @property
    def names(self) -> list[str]:
        return list(self._scopes)

    @property
    def base(self) -> Scope:
        if self._base is None:
            raise ImproperlyConfigured("No base scope is registered")
        return self._base

    def expand(self, granted: Iterable[str]) -> set[str]:
        """``granted`` plus every scope they cover, transitively."""
        covered: set[str] = set()
        pending = list(granted)
        while pending:
            name = pending.pop()
            if name in covered:
                continue
            covered.add(name)
            if name in self._scopes:
                pending.extend(self._scopes[name].covers)
        return covered

    def missing(self, *, granted: Iterable[str], required: Iterable[str]) -> list[str]:
        """The ``required`` scopes that ``granted`` does not cover, in ``required`` order."""
        covered = self.expand(granted)
        return [name for name in required if name not in covered]

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self._scopes]


scope_registry = ScopeRegistry(
    Scope("mcp", "Connect to this site as you", base=True),
    # OpenID Connect Core §5.4: never the address, even where it is the username (authserver.claims).
    Scope("profile", "See your username and name, not your email address"),
    Scope("email", "See your email address"),
    Scope("openid", "Sign you in with OpenID Connect"),
)


def offered_scopes() -> list[Scope]:
    """The registered scopes, less ``openid`` when OpenID Connect is off (no key to sign ID tokens)."""
    return [scope for scope in scope_registry if scope.name != "openid" or oauth2_settings.OIDC_ENABLED]


class RegistryScopes(BaseScopes):
    """django-oauth-toolkit's scopes backend over the registry (``SCOPES_BACKEND_CLASS``).

    Every client may ask for every registered scope, unless an operator limited it (``allowed_scope``);
    what a person's client gets is the person's decision on the consent page. A token for no person
    (client credentials) gets only scopes an operator listed: none listed, none at all. With no
    ``scope`` in a request, a client gets the base scope (when it may have it), and a service client
    every scope it may get (there is no one to ask).
    """

    def get_all_scopes(self):
        return {scope.name: scope.description for scope in offered_scopes()}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        offered = [scope.name for scope in offered_scopes()]
        allowed = getattr(application, "allowed_scopes", None)
        if allowed is None:
            # RFC 6749 §4.4 / §3.3: with no person to decide, only what an operator listed; nothing
            # listed is nothing at all, never every scope (a client made to introspect lists none).
            return [] if getattr(request, "grant_type", None) == "client_credentials" else offered
        return [name for name in offered if name in allowed]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        # RFC 6749 §3.3: the pre-defined default, within what this client may get (none left: the
        # request fails with invalid_scope, MCPOAuth2Validator.validate_scopes).
        available = self.get_available_scopes(application, request)
        if getattr(application, "is_service", False):
            return available
        return [name for name in available if name == scope_registry.base.name]
