"""The one ASGI application: the MCP server under ``MCP_MOUNT_PATH``, Django for everything else.

Its lifespan runs the MCP session manager. ``python manage.py runserver`` serves it on uvicorn, and
so does the production command (README.md, "Running in production"). Static files (the admin's)
are Django's own handler in development; with ``DEBUG`` off they are served from ``STATIC_ROOT``,
where ``manage.py collectstatic`` put them.
"""

import logging
import os
from pathlib import Path

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()  # sets Django up before the imports below

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from authserver.log_redaction import access_log_redact  # noqa: E402
from mcpapp.server import build_asgi_app, build_server  # noqa: E402


def build_application(mcp_application: Starlette) -> Starlette:
    """Route ``MCP_MOUNT_PATH`` to the MCP app, the rest to Django; the lifespan is the MCP app's."""
    routes = [Mount(settings.MCP_MOUNT_PATH, app=mcp_application)]
    if settings.DEBUG:
        routes.append(Mount("", app=ASGIStaticFilesHandler(django_application)))
    else:
        if Path(settings.STATIC_ROOT).is_dir():
            routes.append(Mount("/" + settings.STATIC_URL.strip("/"), app=StaticFiles(directory=settings.STATIC_ROOT)))
        else:
            logging.getLogger(__name__).warning("%s is missing: run `manage.py collectstatic`", settings.STATIC_ROOT)
        routes.append(Mount("", app=django_application))
    return Starlette(
        routes=routes,
        lifespan=mcp_application.router.lifespan_context,
    )


application = build_application(build_asgi_app(build_server()))
# uvicorn's access log writes every request's path and query: none of a client's secrets there.
access_log_redact()
