"""The apps' settings objects: every key has a default in the app, a site's value and
``override_settings`` reach the code at once (nothing is read at import), and a typo is refused."""

import pytest
from django.core.signals import setting_changed
from django.test import override_settings

from authserver.conf import DEFAULTS as AUTHSERVER_DEFAULTS
from authserver.conf import app_settings as authserver_settings
from mcpapp.conf import app_settings as mcpapp_settings
from mcpapp.conf import resource_path
from mcpapp.token_cache import verified_tokens


def test_a_site_that_sets_nothing_gets_every_default(settings):
    del settings.AUTHSERVER
    del settings.MCPAPP
    # pytest-django deletes without Django's setting_changed signal (override_settings sends it).
    for name in ("AUTHSERVER", "MCPAPP"):
        setting_changed.send(sender=type(settings), setting=name, value=None, enter=True)
    assert {name: getattr(authserver_settings, name) for name in AUTHSERVER_DEFAULTS} == AUTHSERVER_DEFAULTS
    assert mcpapp_settings.MOUNT_PATH == "/star" and resource_path() == "/star/mcp"
    assert verified_tokens.seconds == 60.0


def test_a_changed_setting_reaches_code_built_at_import():
    # verified_tokens was made when mcpapp.token_cache was imported; it reads the setting when used.
    with override_settings(MCPAPP={"TOKEN_CACHE_SECONDS": 5, "MOUNT_PATH": "/tools/"}):
        assert verified_tokens.seconds == 5
        assert resource_path() == "/tools/mcp"
    assert verified_tokens.seconds != 5 and resource_path() == "/star/mcp"


def test_a_key_the_app_does_not_have_is_an_attribute_error():
    with pytest.raises(AttributeError, match="REGISTRATION_RATE_LIMT"):
        authserver_settings.REGISTRATION_RATE_LIMT  # noqa: B018
