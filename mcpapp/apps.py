from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class McpappConfig(AppConfig):
    name = "mcpapp"
    verbose_name = "MCP server"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from authserver.capabilities import capability_sources_register
        from authserver.resources import protected_resource_paths_register
        from mcpapp import checks as mcp_checks
        from mcpapp.conf import resource_path, sse_resource_path
        from mcpapp.registry import mcp_registry

        # The endpoints are the authorization server's protected resources (RFC 8707 identifiers).
        protected_resource_paths_register(lambda: (resource_path(), sse_resource_path()))
        # Every installed app's `mcp_tools.py` adds its tools, resources, prompts and scopes.
        autodiscover_modules("mcp_tools")
        # What each scope unlocks, for the consent page and "Connected apps".
        capability_sources_register(mcp_registry.capabilities)
        checks.register(mcp_checks.check_declared_scopes)
        checks.register(mcp_checks.check_settings)
        checks.register(mcp_checks.check_runserver)
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
