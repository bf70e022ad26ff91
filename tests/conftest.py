import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from live.server import LiveServer, free_port
from mcpapp.work import request_threads

PASSWORD = "correct horse battery staple"


def start_server_with_alice(
    tmp_path_factory, name: str, *, port: int | None = None, env: dict[str, str] | None = None, workers=None
) -> LiveServer:
    """A live server (``workers``: the production command) with the person alice signed up."""
    server = LiveServer(tmp_path_factory.mktemp(name), port=port, env=env, workers=workers).start()
    server.create_user("alice", PASSWORD, email="alice@example.com", first_name="Alice", last_name="Liddell")
    return server


@pytest.fixture(scope="session", autouse=True)
def close_connections_of_the_async_orm_thread(django_db_setup):
    """The async ORM outside a request runs in asgiref's one shared sync thread, whose connection
    nothing closes; close it, and the kept MCP request threads' ones, before the test database is
    dropped (PostgreSQL refuses while in use)."""
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())
    request_threads.close_all()  # and those of the threads mcpapp keeps for MCP requests


@pytest.fixture(scope="session")
def running_server(tmp_path_factory):
    """The real server on 127.0.0.1 without SITE_URL: every URL comes from the request's origin."""
    server = start_server_with_alice(tmp_path_factory, "live")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def running_server_with_site_url(tmp_path_factory):
    """The real server with SITE_URL set (to its own loopback origin, spelled `localhost`), reached
    at 127.0.0.1: every URL it publishes must still name SITE_URL."""
    port = free_port()
    server = start_server_with_alice(
        tmp_path_factory, "live-site-url", port=port, env={"SITE_URL": f"http://localhost:{port}"}
    )
    yield server
    server.stop()


@pytest.fixture
def operator():
    """A staff member's browser, separate from the `client` that plays the person or the agent."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used"))
    return browser


@pytest.fixture
def app():
    """A third-party public client (an agent), as an operator made it."""
    from tests.factories import make_client

    return make_client()


@pytest.fixture
def signed_in(client, alice):
    """The test client, with alice signed in (for in-process tests marked ``django_db``)."""
    client.force_login(alice)
    return client


@pytest.fixture
def alice():
    """A person with a name, in the test database (for in-process tests marked ``django_db``)."""
    from tests.factories import make_user

    return make_user("alice", first_name="Alice", last_name="Liddell")


def pytest_report_header(config):
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = f" at {database['HOST']}:{database['PORT']}" if database.get("HOST") else ""
    return f"database: {settings.DATABASE_VENDOR}{where}"
