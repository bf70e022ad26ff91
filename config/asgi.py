"""The reference site's ASGI application: the MCP endpoint under ``MCPAPP["MOUNT_PATH"]``, Django
for everything else (``mcpapp.asgi``, as any site would).

``python manage.py runserver`` serves it on uvicorn, and so does the production command (README.md,
"Running in production"). Static files (the admin's) are Django's own handler in development; with
``DEBUG`` off they are served from ``STATIC_ROOT``, where ``manage.py collectstatic`` put them.
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

from mcpapp.asgi import mcp_asgi_application  # noqa: E402


def with_static_files(django_app):
    """Django, with the static files in front: Django's handler with DEBUG on, STATIC_ROOT's otherwise."""
    if settings.DEBUG:
        return ASGIStaticFilesHandler(django_app)
    if not Path(settings.STATIC_ROOT).is_dir():
        logging.getLogger(__name__).warning("%s is missing: run `manage.py collectstatic`", settings.STATIC_ROOT)
        return django_app
    static = Mount("/" + settings.STATIC_URL.strip("/"), app=StaticFiles(directory=settings.STATIC_ROOT))
    return Starlette(routes=[static, Mount("", app=django_app)])


application = mcp_asgi_application(with_static_files(django_application))
