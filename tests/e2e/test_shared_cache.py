"""The shared cache in Redis (CACHE_URL=redis://...): what several workers must agree on lives there.

The registration rate limit is the example: with Redis it is exact even for a burst that arrives
at every worker at once, because Redis increments atomically (the database cache reads, then writes).
"""

import concurrent.futures

import httpx2
import pytest

from live.redis_server import RedisServer
from live.server import LiveServer
from tests.authserver.test_registration import AGENT

LIMIT = 8
BURST = 24


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_on_redis(tmp_path_factory, redis_server):
    env = {"CACHE_URL": redis_server.url, "REGISTRATION_RATE_LIMIT": str(LIMIT)}
    server = LiveServer(tmp_path_factory.mktemp("redis-cache"), workers=4, env=env).start()
    yield server
    server.stop()


def register(url: str) -> int:
    # A connection of its own, so the burst spreads over the workers.
    with httpx2.Client(timeout=30) as http:
        return http.post(url + "/o/register/", json=AGENT).status_code


def test_a_burst_of_registrations_across_workers_is_held_to_exactly_the_limit(server_on_redis, redis_server):
    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(register, [server_on_redis.url] * BURST))

    assert statuses.count(201) == LIMIT
    assert statuses.count(429) == BURST - LIMIT
    # The count lives in Redis, not in the database or a worker's memory.
    keys = redis_server.client().keys("*authserver:ratelimit:registration:*")
    assert len(keys) == 1
    assert int(redis_server.client().get(keys[0])) == BURST


def test_a_client_assertion_replayed_to_every_worker_at_once_is_accepted_once_rfc7523_sec3_item7(server_on_redis):
    from live.keys import KeyPair, assertion_claims
    from tests.e2e.test_machine_clients import service_client_make

    key = KeyPair.make("EdDSA")
    made = service_client_make(server_on_redis, "Replayer", jwks=key.jwks)
    assertion = key.sign(assertion_claims(iss=made["client_id"], sub=made["client_id"], aud=server_on_redis.url))

    def present(_):
        with httpx2.Client(timeout=30) as http:  # a connection of its own: spread over the workers
            return http.post(
                server_on_redis.url + "/o/token/",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                },
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(present, range(BURST)))
    assert statuses.count(200) == 1 and statuses.count(401) == BURST - 1
