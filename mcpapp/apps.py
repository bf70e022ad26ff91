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
