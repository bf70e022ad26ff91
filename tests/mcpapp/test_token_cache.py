"""Verified tokens are remembered, and a revoked one is refused on the very next request.

Each test uses a token once at the MCP endpoint (so this process remembers it), revokes it by one
of the ways a person, a client or an operator can, and expects the next request to be refused.
The endpoint is the real ASGI application in-process; revocations go through the real views.
Transactions commit (``transaction=True``), so the announcements to other workers are made too;
``test_another_worker_*`` plays such a worker.
"""

import time

import anyio
import pytest
from django.db import connection
from django.test import Client, override_settings
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver.models import ConsentGrant, token_checksum
from live.paths import MCP_PATH
from mcpapp.token_cache import VerifiedToken, VerifiedTokenCache, verified_tokens
from mcpapp.verifier import DotTokenVerifier
from tests.authserver.helpers import connect, refresh, stored_access_token
from tests.factories import make_access_token, make_client
from tests.mcpapp.helpers import HEADERS, INITIALIZE, bearer, mcp_session, run_app

pytestmark = pytest.mark.django_db(transaction=True)


def served(token, **kwargs) -> int:
    """The status of an MCP request carrying ``token``."""
    headers = {**HEADERS, **bearer(token)}
    return run_app(lambda http: http.post(MCP_PATH, json=INITIALIZE, headers=headers), **kwargs).status_code


def remembered(token) -> bool:
    return verified_tokens.get(token_checksum(token)) is not None


def delete_behind_the_servers_back(token) -> None:
    """Delete the row with SQL, as nothing in the product does: no signal, no announcement."""
    with connection.cursor() as cursor:
        table = get_access_token_model()._meta.db_table
        cursor.execute(f"DELETE FROM {table} WHERE token_checksum = %s", [token_checksum(token)])


@pytest.fixture(autouse=True)
def revocations_known(settings):
    """This process's cache trusts what it remembers for the whole test (as if it had just read
    the other workers' revocations): only a revocation in this process can make it forget."""
    settings.MCPAPP = {**settings.MCPAPP, "TOKEN_REVOCATION_POLL_SECONDS": 3600}
    verified_tokens.read_revocations()


@pytest.fixture
def agent():
    return make_client(name="Cached agent")


@pytest.fixture
def person(alice):
    browser = Client()
    browser.force_login(alice)
    return browser


@pytest.fixture
def used_tokens(person, agent):
    """A token pair from the real flow, whose access token the MCP endpoint has served once."""
    tokens = connect(person, agent)
    assert served(tokens["access_token"]) == 200
    assert remembered(tokens["access_token"])
    return tokens


# --- Remembered ------------------------------------------------------------------------------


def test_a_verified_token_is_served_from_memory_without_a_lookup(alice, agent):
    token = make_access_token(alice, agent)
    assert served(token) == 200
    delete_behind_the_servers_back(token)
    # Still served: the token was not looked up again.
    assert served(token) == 200


def test_with_the_cache_switched_off_every_request_looks_the_token_up(alice, agent, settings):
    settings.MCPAPP = {**settings.MCPAPP, "TOKEN_CACHE_SECONDS": 0}
    token = make_access_token(alice, agent)
    assert served(token) == 200
    assert not remembered(token)
    delete_behind_the_servers_back(token)
    assert served(token) == 401


def test_a_remembered_token_is_refused_once_it_expires(alice, agent):
    token = make_access_token(alice, agent, expires_in=600)
    assert served(token) == 200
    assert remembered(token)
    # RFC 6750 §3.1: eleven minutes later it is expired, remembered or not.
    assert served(token, clock=lambda: time.time() + 660) == 401


def test_a_tool_that_changes_its_user_does_not_change_the_next_requests(alice, agent):
    token = make_access_token(alice, agent)
    verifier = DotTokenVerifier()
    first = anyio.run(verifier.verify_token, token)
    first.user.first_name = "Changed by a tool"
    second = anyio.run(verifier.verify_token, token)

    assert remembered(token)
    assert second.user.first_name == alice.first_name
    assert second.user.pk == alice.pk


def test_each_request_gets_its_own_access_token_and_memory_keeps_no_token(alice, agent):
    token = make_access_token(alice, agent, scope="mcp profile")
    verifier = DotTokenVerifier()
    first = anyio.run(verifier.verify_token, token)
    first.scopes.append("notes:write")  # a tool that changes what it was handed
    second = anyio.run(verifier.verify_token, token)

    assert second.token == token and second.client_id == agent.client_id and second.subject == str(alice.pk)
    assert second.scopes == ["mcp", "profile"]
    assert second is not first
    # The database keeps no token (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE); what memory remembers holds none either.
    entry = verified_tokens.get(token_checksum(token))
    assert token not in repr(vars(entry)) and token not in repr(entry.access_token.__dict__)


def test_unknown_tokens_are_not_remembered(alice, agent):
    assert served("not-a-token") == 401
    assert not remembered("not-a-token")


# --- Revoked: the very next request in this process is refused ------------------------------


def test_revoked_at_the_revocation_endpoint(used_tokens, agent, person):
    # RFC 7009 §2.1, by the public client itself.
    revoked = person.post("/o/revoke_token/", {"token": used_tokens["access_token"], "client_id": agent.client_id})
    assert revoked.status_code == 200
    assert served(used_tokens["access_token"]) == 401


def test_revoked_with_its_refresh_token_at_the_revocation_endpoint(used_tokens, agent, person):
    # RFC 7009 §2.1: revoking a refresh token revokes the access tokens issued with it.
    revoked = person.post("/o/revoke_token/", {"token": used_tokens["refresh_token"], "client_id": agent.client_id})
    assert revoked.status_code == 200
    assert served(used_tokens["access_token"]) == 401


def test_replaced_by_refresh_rotation(used_tokens, agent, person):
    rotated = refresh(person, agent, used_tokens["refresh_token"])
    assert rotated.status_code == 200
    assert served(used_tokens["access_token"]) == 401
    assert served(rotated.json()["access_token"]) == 200


def test_revoked_with_its_family_when_a_used_refresh_token_comes_back(used_tokens, agent, person):
    rotated = refresh(person, agent, used_tokens["refresh_token"]).json()
    assert served(rotated["access_token"]) == 200
    # RFC 9700 §4.14.2: the old refresh token presented again revokes the whole family, whose
    # access tokens are expired in bulk (authserver.revocation.refresh_token_family_revoke).
    assert refresh(person, agent, used_tokens["refresh_token"]).status_code == 400
    assert served(rotated["access_token"]) == 401


def test_revoked_from_the_connected_apps_page(used_tokens, person):
    grant = ConsentGrant.objects.get()
    assert person.post(f"/accounts/connected-apps/{grant.pk}/revoke/").status_code == 302
    assert served(used_tokens["access_token"]) == 401


@pytest.mark.parametrize("model", ["accesstoken", "refreshtoken"])
def test_revoked_in_the_admin(used_tokens, operator, model):
    token = used_tokens["access_token" if model == "accesstoken" else "refresh_token"]
    Model = get_access_token_model() if model == "accesstoken" else get_refresh_token_model()
    row = Model.objects.get(token_checksum=token_checksum(token))
    action = {"action": "revoke_tokens", "_selected_action": [row.pk]}
    acted = operator.post(f"/admin/authserver/{model}record/", action)
    assert acted.status_code == 302
    assert served(used_tokens["access_token"]) == 401


@pytest.mark.parametrize("action", ["revoke_all_tokens", "disable"])
def test_revoked_by_an_admin_action_on_its_client(used_tokens, operator, agent, action):
    acted = operator.post("/admin/authserver/application/", {"action": action, "_selected_action": [agent.pk]})
    assert acted.status_code == 302
    assert served(used_tokens["access_token"]) == 401


def test_refused_once_its_user_is_deactivated_in_the_admin(used_tokens, operator, alice):
    change = operator.get(f"/admin/auth/user/{alice.pk}/change/")
    form = change.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(is_active="", groups=[], user_permissions=[], last_login_0="", last_login_1="")
    data.update(date_joined_0=alice.date_joined.strftime("%Y-%m-%d"), date_joined_1="00:00:00")
    saved = operator.post(f"/admin/auth/user/{alice.pk}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    alice.refresh_from_db()
    assert alice.is_active is False
    assert served(used_tokens["access_token"]) == 401


def test_held_to_the_scopes_an_operator_narrowed_it_to(used_tokens):
    whoami = mcp_session(used_tokens["access_token"], lambda client: client.call_tool("whoami", {}))
    assert not whoami.is_error
    row = stored_access_token(used_tokens["access_token"])
    row.scope = "mcp"
    row.save()

    async def call_whoami(http):
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        return await http.post(MCP_PATH, json=call, headers={**HEADERS, **bearer(used_tokens["access_token"])})

    # RFC 6750 §3.1: the remembered scopes are gone with the edit.
    assert run_app(call_whoami).status_code == 403


# --- The other workers -----------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_another_worker_forgets_a_revoked_token_at_its_next_poll(alice, agent):
    """A second cache plays a worker process: it learns revocations only through the shared cache."""
    clock = Clock()
    worker = VerifiedTokenCache(seconds=60, max_entries=100, poll_seconds=0.5, clock=clock)
    other = DotTokenVerifier(cache=worker)
    worker.read_revocations()  # its read of the revocations so far (in the background in a server)
    token = make_access_token(alice, agent)
    assert anyio.run(other.verify_token, token) is not None
    assert worker.get(token_checksum(token)) is not None

    get_access_token_model().objects.get(token_checksum=token_checksum(token)).revoke()  # here, committed

    # Its memory is trusted for poll_seconds after its last read began, never longer: then it
    # looks the token up (and finds it gone), whether or not a read has completed since.
    clock.now += 0.6
    assert anyio.run(other.verify_token, token) is None
    worker.read_revocations()  # and its next poll forgets it
    assert worker.get(token_checksum(token)) is None


def test_another_worker_keeps_tokens_that_were_not_revoked(alice, agent):
    clock = Clock()
    worker = VerifiedTokenCache(seconds=60, max_entries=100, poll_seconds=0.5, clock=clock)
    other = DotTokenVerifier(cache=worker)
    worker.read_revocations()
    kept, revoked = make_access_token(alice, agent), make_access_token(alice, agent)
    for token in (kept, revoked):
        assert anyio.run(other.verify_token, token) is not None
    get_access_token_model().objects.get(token_checksum=token_checksum(revoked)).revoke()
    clock.now += 1
    worker.read_revocations()
    assert worker.get(token_checksum(revoked)) is None
    assert worker.get(token_checksum(kept)) is not None


def test_a_lookup_under_way_while_a_revocation_is_learnt_is_not_remembered(alice, agent):
    cache = VerifiedTokenCache(seconds=60, max_entries=100, poll_seconds=3600)
    cache.read_revocations()
    verified = VerifiedToken(("mcp",), time.time() + 600, (), access_token=None)
    generation = cache.generation  # read before the lookup
    cache.forget(["some revoked token"])  # a revocation arrives while the row is being read
    assert cache.put("checksum", verified, generation=generation) is False
    assert cache.get("checksum") is None


def test_only_so_many_tokens_are_remembered(alice):
    cache = VerifiedTokenCache(seconds=60, max_entries=3, poll_seconds=3600)
    cache.read_revocations()
    verified = VerifiedToken(("mcp",), time.time() + 600, (), access_token=None)
    for index in range(5):
        cache.put(f"checksum-{index}", verified, generation=cache.generation)
    assert len(cache) == 3
    assert cache.get("checksum-0") is None and cache.get("checksum-4") is not None


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}
)
def test_when_revocations_cannot_be_read_nothing_is_answered_from_memory(alice, agent):
    # Nothing listens on port 9 (discard): the shared cache is unreachable.
    clock = Clock()
    worker = VerifiedTokenCache(seconds=60, max_entries=100, poll_seconds=0.5, clock=clock)
    verifier = DotTokenVerifier(cache=worker)
    token = make_access_token(alice, agent)
    worker.read_revocations()
    assert anyio.run(verifier.verify_token, token) is not None
    assert len(worker) == 0
    delete_behind_the_servers_back(token)
    assert anyio.run(verifier.verify_token, token) is None
