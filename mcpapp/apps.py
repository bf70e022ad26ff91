from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class McpappConfig(AppConfig):
    name = "mcpapp"
    verbose_name = "MCP server"

    def ready(self):
        # Every installed app's `mcp_tools.py` adds its tools, resources, prompts and scopes.
        autodiscover_modules("mcp_tools")
        checks.register(check_declared_scopes)
        _connect_token_cache_signals()


def _connect_token_cache_signals():
    """Whatever makes a verified token invalid makes ``mcpapp.token_cache`` forget it."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save
    from oauth2_provider.models import get_access_token_model, get_application_model

    from authserver.revocation import access_tokens_revoked
    from mcpapp import signals

    AccessToken = get_access_token_model()
    post_save.connect(signals.access_token_saved, sender=AccessToken, dispatch_uid="mcpapp.access_token_saved")
    post_delete.connect(signals.access_token_deleted, sender=AccessToken, dispatch_uid="mcpapp.access_token_deleted")
    access_tokens_revoked.connect(signals.access_tokens_revoked, dispatch_uid="mcpapp.access_tokens_revoked")
    post_save.connect(signals.user_saved, sender=get_user_model(), dispatch_uid="mcpapp.user_saved")
    post_save.connect(signals.client_saved, sender=get_application_model(), dispatch_uid="mcpapp.client_saved")


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
