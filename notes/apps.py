from django.apps import AppConfig


class NotesConfig(AppConfig):
    """A demo app: per-user notes, and the MCP tools that read and add to them (in ``mcp_tools.py``)."""

    name = "notes"
    default_auto_field = "django.db.models.BigAutoField"
