"""``runserver`` that serves the site's ASGI application (Django *and* the MCP endpoint) on uvicorn.

Django's own runserver speaks WSGI only, so it could not serve the MCP endpoint. This is Django's
command (the staticfiles one) with its two public hooks set: ``get_handler`` answers the ASGI
application, and ``server_cls`` is a server that binds the address Django asks for and serves that
application with uvicorn (``uvicorn.Server.run(sockets=...)``, its public API). Everything else is
Django's: its arguments (``[addr:port]``, ``--ipv6``, ``--noreload``, ``--nostatic``,
``--skip-checks``), system and migration checks, port errors and autoreloader; the banner
(``on_bind``) says what runs and where the MCP endpoint, sign-in and admin are.

The application is ``ASGI_APPLICATION`` when the site sets it (it must mount MCP with
``mcpapp.asgi.mcp_asgi_application``); when unset (``startproject`` sets only ``WSGI_APPLICATION``),
Django's ASGI handler with MCP mounted, and static files served as Django's runserver serves them.
"""

import os
import socket
import sys
from datetime import datetime

import uvicorn
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from authserver.resources import public_origin
from mcpapp.asgi import mcp_asgi_application, mounts_mcp
from mcpapp.conf import resource_path


class UvicornServer:
    """What Django's ``runserver`` expects of its ``server_cls`` (``django.core.servers.basehttp.run``):
    made with the address, then ``set_app`` and ``serve_forever``. Binding here, as Django's server
    does, lets Django report a port in use or not allowed with its own messages."""

    def __init__(self, server_address, handler_class=None, ipv6=False):
        # IPPROTO_TCP named: accepted connections inherit it, and asyncio turns Nagle's algorithm off
        # (TCP_NODELAY) only on sockets that say so; otherwise each keep-alive request after the
        # first waits ~40 ms for the client's delayed ACK (uvicorn#3149, fixed in 0.55 for its own).
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind(server_address)
        except OSError:
            self.socket.close()
            raise
        self.server_port = self.socket.getsockname()[1]
        self.application = None

    def set_app(self, application):
        self.application = application

    def serve_forever(self):
        config = uvicorn.Config(
            self.application,
            lifespan="on",
            log_level=os.environ.get("UVICORN_LOG_LEVEL", "info"),
            # Behind a reverse proxy, trust X-Forwarded-Proto/For only from loopback (uvicorn default).
            proxy_headers=True,
        )
        server = uvicorn.Server(config)
        server.run(sockets=[self.socket])
        if not server.started:
            # uvicorn logs why (the application's lifespan failed) and returns instead of raising.
            os._exit(1)


class Command(StaticfilesRunserver):
    help = "Serves the site (Django and the MCP endpoint) on uvicorn, for development."
    server_cls = UvicornServer

    def on_bind(self, server_port):
        # Django's banner says "development server" and points at WSGI servers; this one says what
        # runs, once, and where a person goes next.
        host = (
            "localhost" if self.addr in ("0", "0.0.0.0", "::") else (f"[{self.addr}]" if self._raw_ipv6 else self.addr)
        )
        origin = public_origin(f"{self.protocol}://{host}:{server_port}")
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        lines = [
            f"{datetime.now():%B %d, %Y - %X} · Django {self.get_version()} · settings {settings.SETTINGS_MODULE!r}",
            f"Serving the site's ASGI application on uvicorn {uvicorn.__version__} at {origin}/",
            "(for development only; production runs uvicorn workers behind a proxy: README, Running in production)",
            f"  MCP endpoint  {origin}{resource_path()}",
        ]
        for label, name in (("Sign in     ", "authserver:login"), ("Admin       ", "admin:index")):
            try:
                lines.append(f"  {label}  {origin}{reverse(name)}")
            except NoReverseMatch:  # the site does not include those URLs
                pass
        lines.append(f"Quit with {quit_command}.")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()  # seen at once even when stdout is a pipe or a log file

    def get_handler(self, *args, **options):
        asgi_application = getattr(settings, "ASGI_APPLICATION", None)
        if not asgi_application:
            django_application = get_asgi_application()
            if options.get("use_static_handler", True) and (settings.DEBUG or options.get("insecure_serving")):
                django_application = ASGIStaticFilesHandler(django_application)
            return mcp_asgi_application(django_application)
        application = import_string(asgi_application)
        if not mounts_mcp(application):
            raise ImproperlyConfigured(
                f"ASGI_APPLICATION ({asgi_application}) does not serve the MCP endpoint: make it "
                "mcpapp.asgi.mcp_asgi_application(get_asgi_application()), or unset ASGI_APPLICATION."
            )
        return application
