"""``{% load client_text %}``: showing text a client supplied (see ``authserver.display_text``)."""

from django import template

from authserver.display_text import display_text_clean

register = template.Library()


@register.filter
def without_invisible(value) -> str:
    """The text without control, formatting or invisible characters, for where ``<bdi>`` cannot go."""
    return display_text_clean(str(value))
