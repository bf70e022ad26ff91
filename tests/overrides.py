"""``override_settings`` for the apps' dict settings: a few keys changed, the rest as the site has them."""

from django.conf import settings
from django.test import override_settings


def authserver_settings(**values) -> override_settings:
    return override_settings(AUTHSERVER={**getattr(settings, "AUTHSERVER", {}), **values})


def mcpapp_settings(**values) -> override_settings:
    return override_settings(MCPAPP={**getattr(settings, "MCPAPP", {}), **values})
