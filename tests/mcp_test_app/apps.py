from django.apps import AppConfig


class McpTestAppConfig(AppConfig):
    """An app a Django developer might write: installed, it adds MCP tools without any other setting."""

    name = "tests.mcp_test_app"
    label = "mcp_test_app"
