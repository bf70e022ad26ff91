import pytest

from tests.e2e.live_server import LiveServer, free_port

PASSWORD = "correct horse battery staple"


def _start(tmp_path_factory, name: str, *, port: int | None = None, env: dict[str, str] | None = None):
    server = LiveServer(tmp_path_factory.mktemp(name), port=port, env=env).start()
    server.create_user("alice", PASSWORD, email="alice@example.com", first_name="Alice", last_name="Liddell")
    return server


@pytest.fixture(scope="session")
def running_server(tmp_path_factory):
    """The real server on 127.0.0.1 without SITE_URL: every URL comes from the request's origin."""
    server = _start(tmp_path_factory, "live")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def running_server_with_site_url(tmp_path_factory):
    """The real server with SITE_URL set (to its own loopback origin, spelled `localhost`), reached
    at 127.0.0.1: every URL it publishes must still name SITE_URL."""
    port = free_port()
    server = _start(tmp_path_factory, "live-site-url", port=port, env={"SITE_URL": f"http://localhost:{port}"})
    yield server
    server.stop()


@pytest.fixture
def alice():
    """A person with a name, in the test database (for in-process tests marked ``django_db``)."""
    from tests.factories import make_user

    return make_user("alice", first_name="Alice", last_name="Liddell")
