"""The one ASGI application: the MCP server under ``MCP_MOUNT_PATH``, Django for everything else.

Its lifespan runs the MCP session manager. ``python manage.py runserver`` serves it on uvicorn.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()  # sets Django up before the imports below

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from mcpapp.server import build_asgi_app, build_server  # noqa: E402


def build_application(mcp_application: Starlette) -> Starlette:
    """Route ``MCP_MOUNT_PATH`` to the MCP app, the rest to Django; the lifespan is the MCP app's."""
    django_app = ASGIStaticFilesHandler(django_application) if settings.DEBUG else django_application
    return Starlette(
        routes=[Mount(settings.MCP_MOUNT_PATH, app=mcp_application), Mount("", app=django_app)],
        lifespan=mcp_application.router.lifespan_context,
    )


application = build_application(build_asgi_app(build_server()))
