from django.apps import AppConfig


class McpappConfig(AppConfig):
    name = "mcpapp"
    verbose_name = "MCP server"
