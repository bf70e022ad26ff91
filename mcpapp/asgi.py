"""The one helper a site needs to serve the MCP endpoint: its ASGI application, with MCP mounted.

In the site's ``asgi.py``::

    import os
    from django.core.asgi import get_asgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    django_application = get_asgi_application()  # sets Django up first

    from mcpapp.asgi import mcp_asgi_application  # noqa: E402

    application = mcp_asgi_application(django_application)

``MCPAPP["MOUNT_PATH"]`` (``/star``) goes to the MCP server, everything else to Django. The lifespan is
the MCP server's (its session manager, graceful shutdown), so serve it with lifespan on (uvicorn's
default). ``manage.py runserver`` serves this too (``mcpapp``'s ``runserver``).
"""

from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.log_redaction import access_log_redact
from mcpapp.conf import mount_path
from mcpapp.server import build_asgi_app, build_server, route_path


def mcp_asgi_application(django_application: ASGIApp | None = None, *, mcp_application: Starlette | None = None):
    """``django_application`` (Django's ASGI handler, or the site's wrapped one) with the MCP endpoint
    mounted in front of it. ``mcp_application`` defaults to the server every installed app's
    ``mcp_tools.py`` registered into (``build_asgi_app(build_server())``)."""
    mcp_application = mcp_application or build_asgi_app(build_server())
    application = SiteApplication(
        routes=[Mount(mount_path(), app=mcp_application), Mount("", app=django_application or get_asgi_application())],
        lifespan=mcp_application.router.lifespan_context,
        mcp_application=mcp_application,
    )
    application.state.mcp_mount_path = mount_path()  # runserver checks that the site's app mounts MCP
    # uvicorn's access log writes every request's path and query: none of a client's secrets there.
    access_log_redact()
    return application


class SiteApplication(Starlette):
    """The site: the MCP app under its mount, Django for the rest. A request under the mount goes
    to the MCP app directly, with the ``root_path`` Starlette's ``Mount`` would give it, rather
    than through this app's error and exception layers and router (the MCP app has its own)."""

    def __init__(self, *, mcp_application: ASGIApp, **kwargs):
        super().__init__(**kwargs)
        self.mcp_application = mcp_application
        self.mcp_prefix = mount_path() + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope).startswith(self.mcp_prefix):
            scope["root_path"] = scope.get("root_path", "") + self.mcp_prefix[:-1]
            await self.mcp_application(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def mounts_mcp(application) -> bool:
    """Whether ``application`` was made by :func:`mcp_asgi_application`."""
    state = getattr(application, "state", None)
    return getattr(state, "mcp_mount_path", None) is not None
