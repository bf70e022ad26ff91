"""``manage.py check`` for a site using mcpapp."""

from django.core import checks
from django.core.management import get_commands

from authserver.resources import is_origin
from mcpapp.conf import app_settings
from mcpapp.token_cache import TOMBSTONE_MARGIN_SECONDS


def check_declared_scopes(app_configs=None, registry=None, **kwargs):
    """mcpapp.E001: every scope a tool, resource or prompt needs is registered (a typo would lock it)."""
    from mcpapp.registry import mcp_registry

    registry = registry or mcp_registry
    return [
        checks.Error(
            f"The MCP {entry.kind} {entry.key!r} needs the scope {name!r}, which no app registers.",
            hint="Register it with authserver.scopes.scope_registry.register(Scope(...)) in the app's mcp_tools.py.",
            obj=entry.fn,
            id="mcpapp.E001",
        )
        for entry, name in registry.undeclared_scopes()
    ]


def check_settings(app_configs=None, **kwargs):
    found = app_settings.unknown_keys_check("mcpapp.E002")
    for origin in app_settings.ALLOWED_ORIGINS:
        if not is_origin(origin.rstrip("/")):
            found.append(
                checks.Error(
                    f"MCPAPP['ALLOWED_ORIGINS'] holds origins like https://app.example.com, not {origin!r}.",
                    id="mcpapp.E003",
                )
            )
    cached, poll = app_settings.TOKEN_CACHE_SECONDS, app_settings.TOKEN_REVOCATION_POLL_SECONDS
    if cached > 0 and poll >= cached + TOMBSTONE_MARGIN_SECONDS:
        found.append(
            checks.Error(
                f"TOKEN_REVOCATION_POLL_SECONDS ({poll}) is longer than a revocation's tombstone is kept "
                f"(TOKEN_CACHE_SECONDS + {TOMBSTONE_MARGIN_SECONDS} s): other workers could miss a revocation "
                "and serve a revoked token until it leaves their cache.",
                hint="Poll more often than TOKEN_CACHE_SECONDS (the default polls every 0.5 s).",
                id="mcpapp.E004",
            )
        )
    if not app_settings.MOUNT_PATH.strip("/"):
        found.append(
            checks.Error(
                "MCPAPP['MOUNT_PATH'] must be a path below the root, e.g. '/mcp-server'.",
                hint="The site itself stays at the root.",
                id="mcpapp.E005",
            )
        )
    return found


def check_runserver(app_configs=None, **kwargs):
    """mcpapp.W006: another app's runserver (staticfiles, listed before mcpapp) would serve WSGI: no MCP."""
    owner = get_commands().get("runserver")
    if owner in (None, "mcpapp"):
        return []
    return [
        checks.Warning(
            f"`manage.py runserver` is {owner}'s, which serves WSGI: the MCP endpoint would answer 404.",
            hint=f'List "mcpapp" before "{owner}" in INSTALLED_APPS.',
            id="mcpapp.W006",
        )
    ]
