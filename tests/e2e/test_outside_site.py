"""The apps in a site that is not ours: a brand-new ``django-admin startproject`` site with its own user
model (email as the login), the built wheel installed into a fresh virtualenv, and the settings, URLs,
ASGI application and tool that README.md's "Add it to your Django site" shows (read from README.md, so
the two cannot drift apart). Then the MCP SDK client's whole flow against it: discovery,
registration, sign-in, consent, a tool call, a step-up, a refresh; the person's address kept from an
agent not allowed `email`; and a stranger's wrong passwords that do not lock the owner out.

The virtualenv gets the exact versions the rest of the suite runs (``requirements.txt`` as constraints),
so what is proven is the package's contents and wiring, not a dependency drift.
"""

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx2
import pytest

from live.forms import parse_forms
from live.paths import MCP_METADATA_PATH, MCP_PATH
from live.person import Person
from live.server import PROJECT_DIR, free_port, process_group_stop, serving_wait
from tests.e2e.agent import Agent

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
STARTUP_SECONDS = 90

ACCOUNTS_MODELS = '''
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save()
        return user

    def create_superuser(self, email, password=None, **fields):
        return self.create_user(email, password, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A site's own user model: people sign in with their email address, and have no first or last name."""

    email = models.EmailField("email address", unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = UserManager()
'''


def readme_snippet(marker: str) -> str:
    """The code block README.md puts right after ``<!-- marker -->``."""
    readme = (PROJECT_DIR / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", readme, flags=re.DOTALL)
    assert match, f"README.md has no snippet marked {marker}"
    return match.group(1)


def run(command: list[str], *, cwd: Path, env: dict | None = None, timeout: float = 300) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def constraints(path: Path) -> Path:
    """requirements.txt as pip constraints (which may not name extras)."""
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    pins = [re.sub(r"\[[^]]*\]", "", line) for line in lines if line and not line.startswith(("#", "-"))]
    path.write_text("\n".join(pins) + "\n")
    return path


class OutsideSite:
    def __init__(self, root: Path):
        self.root = root
        self.dist = root / "dist"
        self.venv = root / "venv"
        self.dir = root / "mysite"
        self.python = str(self.venv / "bin" / "python")
        self.env = {
            "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
            "HOME": str(root),
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_RUNSERVER_HIDE_WARNING": "true",
        }
        self.process = None

    def build(self) -> list[Path]:
        run([sys.executable, "-m", "build", "--outdir", str(self.dist), str(PROJECT_DIR)], cwd=self.root)
        return sorted(self.dist.iterdir())

    def install(self, wheel: Path) -> None:
        run([sys.executable, "-m", "venv", str(self.venv)], cwd=self.root, env=self.env)
        pip = [self.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run([*pip, "-c", str(constraints(self.root / "constraints.txt")), str(wheel)], cwd=self.root, env=self.env)

    def create(self) -> None:
        self.dir.mkdir()
        run(
            [str(self.venv / "bin" / "django-admin"), "startproject", "mysite", str(self.dir)],
            cwd=self.root,
            env=self.env,
        )
        self.manage("startapp", "accounts")
        (self.dir / "accounts" / "models.py").write_text(ACCOUNTS_MODELS)
        (self.dir / "accounts" / "mcp_tools.py").write_text(readme_snippet("site-tool"))
        settings = self.dir / "mysite" / "settings.py"
        settings.write_text(
            settings.read_text()
            + "\n# The site's own app and user model.\n"
            + 'INSTALLED_APPS += ["accounts"]\nAUTH_USER_MODEL = "accounts.User"\n'
            + "\n# README.md, 'Add it to your Django site'.\n"
            + readme_snippet("site-settings")
        )
        (self.dir / "mysite" / "urls.py").write_text(readme_snippet("site-urls"))
        (self.dir / "mysite" / "asgi.py").write_text(readme_snippet("site-asgi"))
        self.manage("makemigrations", "accounts")
        self.manage("migrate", "--noinput")
        create = f"get_user_model().objects.create_user({EMAIL!r}, {PASSWORD!r})"
        self.manage("shell", "-c", f"from django.contrib.auth import get_user_model; {create}")

    def manage(self, *args: str) -> str:
        return run([self.python, "manage.py", *args], cwd=self.dir, env=self.env)

    def serve(self, command: list[str], port: int) -> str:
        self.log_path = self.root / f"server-{port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command, cwd=self.dir, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        serving_wait(self.process, url, log_path=self.log_path, timeout=STARTUP_SECONDS)
        return url

    def stop(self) -> str:
        process_group_stop(self.process)
        self.process = None
        self.log.close()
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def outside_site(tmp_path_factory):
    site = OutsideSite(tmp_path_factory.mktemp("outside-site"))
    site.artifacts = site.build()
    wheel = next(path for path in site.artifacts if path.suffix == ".whl")
    site.install(wheel)
    site.create()
    return site


def test_the_package_builds_one_wheel_and_an_sdist_with_only_the_apps(outside_site):
    names = sorted(path.name for path in outside_site.artifacts)
    assert len(names) == 2 and names[0].endswith(".whl") and names[1].endswith(".tar.gz"), names
    with zipfile.ZipFile(outside_site.artifacts[0]) as wheel:
        files = wheel.namelist()
    packages = {name.split("/")[0] for name in files if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"authserver", "mcpapp"}
    # Templates and migrations travel with the apps.
    for shipped in (
        "authserver/templates/authserver/authorize.html",
        "authserver/templates/authserver/login.html",
        "authserver/migrations/0001_initial.py",
        "mcpapp/management/commands/runserver.py",
    ):
        assert shipped in files


def test_the_site_passes_every_check_of_the_apps(outside_site):
    report = outside_site.manage("check", "--fail-level", "WARNING")
    assert "System check identified no issues" in report
    # README's settings apply authserver's lockout policy: neither django-axes nor authserver warns about it.
    assert not re.search(r"axes|authserver\.W01[356]", report), report


def whoami_of(url: str, person: Person):
    """What the whoami tool tells a new agent acting for ``person`` (who answers its consent pages)."""
    agent = Agent(url + MCP_PATH, person)

    async def call():
        async with agent.connect(mode="2026-07-28") as client:
            return await client.call_tool("whoami", {})

    return anyio.run(call)


def sign_in(url: str, username: str, password: str) -> int:
    """The status of a sign-in on the site's page, from a new browser on 127.0.0.1."""
    with httpx2.Client(timeout=30) as browser:
        page = browser.get(url + "/accounts/login/")
        (form,) = [form for form in parse_forms(page.text) if "password" in form.names]
        data = urlencode(form.submission(username=username, password=password))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return browser.post(url + "/accounts/login/", content=data, headers=headers).status_code


def test_the_sdk_client_completes_the_whole_flow_against_the_outside_site(outside_site):
    port = free_port()
    url = outside_site.serve(
        [outside_site.python, "-m", "uvicorn", "mysite.asgi:application", "--host=127.0.0.1", f"--port={port}"], port
    )
    try:
        agent = Agent(url + MCP_PATH, Person(EMAIL, PASSWORD))

        async def first_connection():
            async with agent.connect(mode="2026-07-28") as client:
                tools = await client.list_tools()
                return tools, await client.call_tool("hello", {}), await client.call_tool("whoami", {})

        tools, hello, whoami = anyio.run(first_connection)
        # Discovery and registration (RFC 9728, RFC 8414, RFC 7591), then sign-in with the site's email
        # login, consent to the base scope, and a step-up for each tool's scope.
        assert agent.requests("POST", "/o/register/") == [201]
        assert agent.person.pages[0] == "/accounts/login/"
        assert agent.person.pages.count("/o/authorize/") == 3
        assert agent.callbacks[-1]["iss"] == url
        assert {"hello", "whoami"} <= {tool.name for tool in tools.tools}
        # The site's user model has no names, and its username is the address: under `profile`, without
        # `email`, neither whoami nor the README's tool gives it away (OpenID Connect Core §5.4).
        assert not whoami.is_error and whoami.structured_content["acting_as"] == "person"
        assert EMAIL not in str(whoami.structured_content) and EMAIL not in str(whoami.content)
        assert hello.content[0].text == "Hello, there!"
        assert set(agent.storage.tokens.scope.split()) == {"mcp", "greetings", "profile"}

        # The access token runs out: the SDK refreshes (rotation) without the person, and carries on.
        first_access_token = agent.storage.tokens.access_token
        agent.oauth.context.token_expiry_time = time.time() - 1

        async def after_expiry():
            async with agent.connect(mode="2026-07-28") as client:
                return await client.call_tool("hello", {})

        again = anyio.run(after_expiry)
        assert again.content[0].text == "Hello, there!"
        assert agent.storage.tokens.access_token != first_access_token
        assert agent.person.pages.count("/o/authorize/") == 3  # nobody was asked again

        # Another agent, and the person ticks "See your email address" when whoami asks for `profile`.
        allowed = whoami_of(url, Person(EMAIL, PASSWORD, tick=("email",)))
        assert allowed.structured_content["email"] == allowed.structured_content["username"] == EMAIL
    finally:
        log = outside_site.stop()
    assert "Traceback" not in log, log


def test_runserver_serves_the_mcp_endpoint_of_a_site_without_asgi_application(outside_site):
    # startproject sets no ASGI_APPLICATION: runserver mounts the endpoint on Django's ASGI handler itself.
    port = free_port()
    url = outside_site.serve([outside_site.python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], port)
    try:
        refused = httpx2.post(url + MCP_PATH, json={}, timeout=10)
        assert refused.status_code == 401
        assert (
            f'resource_metadata="{url}/.well-known/oauth-protected-resource/star/mcp"'
            in (refused.headers["www-authenticate"])
        )
        metadata = httpx2.get(url + MCP_METADATA_PATH, timeout=10).json()
        assert metadata["resource"] == url + MCP_PATH and metadata["authorization_servers"] == [url]
        login = httpx2.get(url + "/accounts/login/", timeout=10)
        assert login.status_code == 200 and "Email address" in login.text
    finally:
        log = outside_site.stop()
    # runserver's banner, flushed at once though stdout is a log file: what runs, and the endpoint.
    assert "Serving the site's ASGI application on uvicorn" in log and f"MCP endpoint  {url}{MCP_PATH}" in log


def test_owasp_asvs_v2_2_1_a_strangers_wrong_passwords_never_lock_the_owner_out_of_the_outside_site(outside_site):
    port = free_port()
    url = outside_site.serve(
        [outside_site.python, "-m", "uvicorn", "mysite.asgi:application", "--host=127.0.0.1", f"--port={port}"], port
    )
    try:
        # Everyone here comes from 127.0.0.1. Two wrong passwords for a made-up account, one typo of the
        # owner's: django-axes' defaults (3 failures, by address, for good) locked the owner out here.
        assert [sign_in(url, "nobody@example.com", "guess") for _ in range(2)] == [200, 200]
        assert sign_in(url, EMAIL, "typo") == 200
        assert sign_in(url, EMAIL, PASSWORD) == 302
        # The guesser goes on: that account is paused at this address; the owner, who signs in with her
        # email (the form's `username`, counted as hers), is not.
        assert [sign_in(url, "nobody@example.com", "guess") for _ in range(5)] == [200, 200, 429, 429, 429]
        assert sign_in(url, EMAIL, PASSWORD) == 302
    finally:
        log = outside_site.stop()
    assert "Traceback" not in log, log
