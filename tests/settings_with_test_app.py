"""The project's settings with one more app installed, and nothing else changed."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.mcp_test_app"]
