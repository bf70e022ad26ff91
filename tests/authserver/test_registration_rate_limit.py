"""Registrations are rate-limited per client address: 429 with Retry-After, nothing stored."""

import json

import pytest

from authserver.models import Application
from authserver.ratelimit import RateLimit
from tests.authserver.test_registration import AGENT
from tests.overrides import authserver_settings

pytestmark = pytest.mark.django_db


def register(client, address="203.0.113.7", body=None):
    return client.post("/o/register/", body or json.dumps(AGENT), content_type="application/json", REMOTE_ADDR=address)


@authserver_settings(REGISTRATION_RATE_LIMIT=3, REGISTRATION_RATE_WINDOW_SECONDS=600)
def test_registrations_over_the_limit_get_429_with_retry_after_and_store_nothing(client):
    assert [register(client).status_code for _ in range(3)] == [201, 201, 201]

    refused = register(client)
    # RFC 6585 §4 (429), RFC 9110 §10.2.3 (Retry-After in seconds): the agent knows when to come back.
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(refused["Retry-After"]) <= 600
    assert Application.objects.count() == 3


@authserver_settings(REGISTRATION_RATE_LIMIT=2)
def test_refused_registrations_count_too_so_probing_the_policy_is_limited(client):
    assert register(client, body="{not json").status_code == 400
    assert register(client, body=json.dumps({**AGENT, "redirect_uris": ["javascript:x"]})).status_code == 400
    assert register(client).status_code == 429
    assert not Application.objects.exists()


@authserver_settings(REGISTRATION_RATE_LIMIT=1)
def test_the_limit_is_per_client_address(client):
    assert register(client, "203.0.113.7").status_code == 201
    assert register(client, "203.0.113.7").status_code == 429
    assert register(client, "198.51.100.20").status_code == 201
    assert register(client, "2001:db8::1").status_code == 201


def test_a_new_window_lets_the_address_register_again():
    limit = RateLimit("test", limit=2, window=60)
    start = 1_800_000_000.0  # a window boundary
    assert [limit.hit("203.0.113.7", now=start + second) for second in (0, 1)] == [None, None]
    assert limit.hit("203.0.113.7", now=start + 15) == 45  # seconds until the window ends
    assert limit.hit("203.0.113.7", now=start + 60) is None
