"""What the shared cache may forget, and what it must not hold (second review: R1 / R2 cache-eviction
probes). Django's database and local-memory caches delete entries once they hold ``MAX_ENTRIES``
(Django's default: 300, the first third by key), and a used ``jti`` sorted first: a few hundred
requests from distinct addresses made a captured client assertion or ID-JAG work a second time.

Used ``jti`` values now live in a table with a unique key (``authserver.models.UsedAssertion``), so no
cache culling, eviction, restart or flush can bring an assertion back (RFC 7523 §3 item 7, RFC 7519
§4.1.7, CWE-294); what stays in the cache (revocation notices, rate-limit counts) has room for a
million entries in the reference settings (authserver.W017 warns of less)."""

import io
import math
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from authserver.client_keys import JTI_MARGIN_SECONDS, LEEWAY_SECONDS, AssertionInvalid, jti_use_once
from authserver.models import Application, IdentityLink, TrustedIdentityProvider, UsedAssertion
from authserver.service_clients import service_client_create
from live.keys import KeyPair, assertion_claims
from mcpapp.token_cache import TOMBSTONE_PREFIX, verified_tokens
from tests.authserver.helpers import ISSUER
from tests.authserver.test_identity_assertions import IDP, SECRET, id_jag, present
from tests.factories import make_company_agent, make_user
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Django's own capacity (no OPTIONS): what the reference site ran with when the probes were written.
CULLING_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}
FLOOD = 320  # requests from distinct IPv6 /64s: more than Django's 300 entries


@pytest.fixture
def key():
    return KeyPair.make("ES256")


@pytest.fixture
def service(key):
    made, _ = service_client_create(name="Nightly report", scopes=["mcp"], jwks=key.jwks)
    return made


def captured_assertion(key: KeyPair, service: Application) -> dict:
    """A client's assertion as a thief copies it (a proxy log, a trace, a crash dump)."""
    claims = assertion_claims(iss=service.client_id, sub=service.client_id, aud=ISSUER)
    signed = key.sign(claims)
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def replay_refused(answer) -> bool:
    return "replayed" in assert_json_error(answer, 401, "invalid_client")["error_description"]


def flood(client) -> None:
    """Anonymous refused token requests, one per IPv6 /64 (a /48 holds 65,536): one cache entry each."""
    for n in range(FLOOD):  # bounded
        client.post("/o/token/", {"grant_type": "client_credentials"}, REMOTE_ADDR=f"2001:db8:aaaa:{n:x}::1")


def test_rfc7523_s3_item7_a_flood_that_culls_the_cache_never_lets_a_used_client_assertion_replay_cwe294(
    client, settings, key, service
):
    settings.CACHES = CULLING_CACHE  # even a site still on Django's 300 entries
    cache.clear()
    stolen = captured_assertion(key, service)
    assert client.post("/o/token/", stolen).status_code == 200  # the service's own use
    assert replay_refused(client.post("/o/token/", stolen))
    cache.set("0-canary", 1, timeout=None)  # sorts before every other key: culled first

    flood(client)

    assert cache.get("0-canary") is None  # the flood did make the cache forget
    assert replay_refused(client.post("/o/token/", stolen, REMOTE_ADDR="198.51.100.1"))


def test_rfc7523_s3_item7_a_used_client_assertion_stays_used_when_the_cache_forgets_everything_cwe294(
    client, key, service
):
    stolen = captured_assertion(key, service)
    assert client.post("/o/token/", stolen).status_code == 200
    cache.clear()  # a Redis restart, an eviction, a flush
    assert replay_refused(client.post("/o/token/", stolen))


@pytest.fixture
def agent():
    return make_company_agent(secret=SECRET)


@pytest.fixture
def idp(key, agent):
    provider = TrustedIdentityProvider.objects.create(name="Acme Okta", issuer=IDP, jwks=key.jwks)
    provider.clients.add(agent)
    return provider


def grant_refused(answer) -> str:
    return assert_json_error(answer, 400, "invalid_grant")["error_description"]


def test_rfc7523_s3_item7_a_used_id_jag_stays_used_when_the_cache_forgets_everything_cwe294(client, key, idp, agent):
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    stolen = id_jag(key, agent)
    assert present(client, agent, stolen).status_code == 200
    cache.clear()
    assert "replayed" in grant_refused(present(client, agent, stolen))


def test_rfc7523_s3_item7_an_id_jag_refused_after_its_jti_was_recorded_has_still_used_it_up(client, key, idp, agent):
    stolen = id_jag(key, agent)
    # Checked, jti recorded, then refused: nobody here is 00u-alice yet.
    assert "No usable account" in grant_refused(present(client, agent, stolen))
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    assert "replayed" in grant_refused(present(client, agent, stolen))


@pytest.mark.django_db(transaction=True)
def test_rfc7523_s3_item7_one_assertion_checked_by_many_workers_at_once_is_accepted_once():
    """Threads with connections of their own, as workers have: the unique key decides, on SQLite and
    PostgreSQL alike (tests/e2e/test_shared_cache.py sends one assertion to 4 server processes)."""
    claims = {"jti": "once", "exp": time.time() + 60}
    start, outcomes = threading.Barrier(8), []

    def use() -> None:
        try:
            start.wait(timeout=30)
            jti_use_once(issuer="client:c", claims=claims)
            outcomes.append("accepted")
        except AssertionInvalid as refusal:
            outcomes.append(str(refusal))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    replayed = "The assertion was used before (jti replayed)"
    assert outcomes.count("accepted") == 1 and outcomes.count(replayed) == 7, outcomes


def test_rfc7523_s3_item7_a_jti_is_kept_until_a_whole_second_after_its_assertion_can_no_longer_be_accepted():
    now = time.time()
    claims = {"jti": "j-1", "exp": now + 60.25}
    jti_use_once(issuer="client:c", claims=claims, clock=lambda: now)
    (row,) = UsedAssertion.objects.all()
    # exp + LEEWAY_SECONDS is the last moment jwt_verify accepts it: rounded up, plus the margin.
    assert row.expires.timestamp() == math.ceil(claims["exp"] + LEEWAY_SECONDS) + JTI_MARGIN_SECONDS
    for moment in (now + 1, now + 90.2, now + 92):
        with pytest.raises(AssertionInvalid, match="replayed"):
            jti_use_once(issuer="client:c", claims=claims, clock=lambda moment=moment: moment)


def test_rfc7519_s4_1_7_a_jti_remembered_past_its_assertion_is_taken_once_by_a_later_assertion_before_any_prune():
    now = time.time()
    jti_use_once(issuer="client:c", claims={"jti": "j-1", "exp": now + 60}, clock=lambda: now)
    later = now + 600  # the first assertion stopped being accepted long ago; `manage.py prune` has not run
    again = {"jti": "j-1", "exp": later + 60}
    jti_use_once(issuer="client:c", claims=again, clock=lambda: later)
    with pytest.raises(AssertionInvalid, match="replayed"):
        jti_use_once(issuer="client:c", claims=again, clock=lambda: later + 1)
    assert UsedAssertion.objects.count() == 1
    # Another signer's identical jti is another assertion.
    jti_use_once(issuer="client:other", claims=again, clock=lambda: later + 1)


def test_rfc7523_s3_item7_prune_forgets_only_jtis_whose_assertions_can_no_longer_be_accepted(client, key, service):
    stolen = captured_assertion(key, service)
    assert client.post("/o/token/", stolen).status_code == 200
    UsedAssertion.objects.create(digest="0" * 64, expires=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("prune", stdout=out)
    assert "1 used assertion(s) no longer acceptable" in out.getvalue()
    assert not UsedAssertion.objects.filter(digest="0" * 64).exists()
    assert replay_refused(client.post("/o/token/", stolen))


def cache_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_cache")
        return cursor.fetchone()[0]


def test_prune_deletes_expired_database_cache_rows_django_keeps_until_the_table_is_full():
    cache.clear()
    cache.set_many({f"gone-{n}": n for n in range(3)}, timeout=1)
    cache.set("kept", 1, timeout=300)
    a_minute_ago = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(minutes=1))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_cache SET expires = %s WHERE cache_key LIKE %s", [a_minute_ago, "%gone-%"])
    assert cache_rows() == 4  # Django deletes expired rows only past MAX_ENTRIES, or when read
    out = io.StringIO()
    call_command("prune", stdout=out)
    assert "3 expired cache row(s)" in out.getvalue()
    assert cache_rows() == 1 and cache.get("kept") == 1


def test_rfc7009_s1_a_large_revocation_keeps_every_tombstone_other_workers_read_with_the_reference_cache():
    """R2: 450 revoked tokens' tombstones, written at once, culled themselves from a 300-entry cache,
    and other workers kept serving those tokens from memory. The reference settings have room."""
    cache.clear()
    checksums = [f"{n:064x}" for n in range(450)]  # a client with 450 live tokens disabled, say
    verified_tokens.announce(checksums)
    kept = cache.get_many([TOMBSTONE_PREFIX + checksum for checksum in checksums])
    assert len(kept) == 450
