"""``runserver`` that serves the project's ASGI application (Django *and* the MCP endpoint) on uvicorn.

Django's own runserver speaks WSGI only, so it could not serve ``/star/mcp``. This keeps its
arguments (``[addr:port]``, ``--ipv6``, ``--noreload``, ``--skip-checks``), its system and
migration checks and its autoreloader, and swaps the server for uvicorn.
"""

import errno
import os

import uvicorn
from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as DjangoRunserver
from django.db import connections
from django.utils import autoreload


class Command(DjangoRunserver):
    help = "Serves the whole project (Django and the MCP endpoint) with uvicorn, for development."

    def inner_run(self, *args, **options):
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            check_kwargs = super().get_check_kwargs(options)
            check_kwargs["display_num_errors"] = True
            self.check(**check_kwargs)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        host = self.addr if not self._raw_ipv6 else self.addr.strip("[]")
        if host == "0":
            host = "0.0.0.0"
        self.on_bind(self.port)
        module, attribute = settings.ASGI_APPLICATION.rsplit(".", 1)
        config = uvicorn.Config(
            f"{module}:{attribute}",
            host=host,
            port=int(self.port),
            lifespan="on",
            log_level=os.environ.get("UVICORN_LOG_LEVEL", "info"),
            # Behind a reverse proxy, trust X-Forwarded-Proto/For only from loopback (uvicorn default).
            proxy_headers=True,
        )
        server = uvicorn.Server(config)
        try:
            server.run()
        except OSError as error:
            messages = {
                errno.EACCES: "You don't have permission to access that port.",
                errno.EADDRINUSE: "That port is already in use.",
                errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
            }
            self.stderr.write("Error: %s" % messages.get(error.errno, error))
            os._exit(1)
        if not server.started:
            # uvicorn logs why (port in use, app failed to load) and returns instead of raising.
            os._exit(1)
