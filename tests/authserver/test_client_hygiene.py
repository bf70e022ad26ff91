"""Hygiene: clients record when they were last used, and `manage.py prune` removes the unused ones.

Agents that register again on every reconnect must not grow the client table without bound.
"""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.clients import client_prune
from authserver.models import Application, AuditEvent
from tests.authserver.helpers import authorize_url, connect, pkce_pair, stored_access_token
from tests.authserver.test_registration import AGENT  # loopback: matches any port, REDIRECT_URI's too
from tests.factories import REDIRECT_URI, make_access_token, make_client
from tests.overrides import authserver_settings

pytestmark = pytest.mark.django_db

GRACE = timedelta(hours=24)  # CLIENT_UNUSED_GRACE_HOURS
RETENTION = timedelta(days=90)  # CLIENT_IDLE_RETENTION_DAYS
AGENT_RECONNECTS = 1000


def self_registered(**fields):
    return make_client(registration_source=Application.RegistrationSource.DCR, **fields)


def age(client, *, created=None, last_used=None):
    """Move a client back in time (the clock the pruning is run with moves forward instead where it can)."""
    Application.objects.filter(pk=client.pk).update(
        **{name: value for name, value in (("created", created), ("last_used", last_used)) if value}
    )


def test_a_client_records_when_it_last_got_a_code_and_a_token(client, alice):
    agent = self_registered()
    assert agent.last_used is None
    client.force_login(alice)
    _verifier, challenge = pkce_pair()
    client.get(authorize_url(agent, challenge))  # the consent page: not a use yet
    agent.refresh_from_db()
    assert agent.last_used is None

    before = timezone.now()
    assert connect(client, agent)["access_token"]
    agent.refresh_from_db()
    assert agent.last_used >= before


def test_a_client_never_used_within_the_grace_period_is_pruned_and_a_young_one_is_kept():
    self_registered(name="young")
    old = self_registered(name="old")
    age(old, created=timezone.now() - GRACE - timedelta(minutes=1))

    assert client_prune() == 1
    assert list(Application.objects.values_list("name", flat=True)) == ["young"]


def test_a_client_idle_longer_than_the_retention_is_pruned_and_one_used_lately_is_kept():
    long_ago = timezone.now() - RETENTION - timedelta(days=1)
    idle = self_registered(name="idle")
    recent = self_registered(name="recent")
    age(idle, created=long_ago, last_used=long_ago)
    age(recent, created=long_ago, last_used=timezone.now() - timedelta(days=3))

    assert client_prune() == 1
    assert list(Application.objects.values_list("name", flat=True)) == ["recent"]


def test_operator_made_first_party_and_disabled_clients_are_never_pruned():
    long_ago = timezone.now() - RETENTION - timedelta(days=1)
    kept = [
        make_client(name="made by an operator"),
        self_registered(name="first-party", skip_authorization=True),
        self_registered(name="disabled", is_active=False),  # pruning it would lift the ban for a metadata document
    ]
    for client in kept:
        age(client, created=long_ago)

    assert client_prune() == 0
    assert Application.objects.count() == 3


def test_a_client_holding_a_live_token_is_not_pruned(alice):
    agent = self_registered()
    make_access_token(alice, agent)
    age(agent, created=timezone.now() - GRACE - timedelta(hours=1))

    assert client_prune() == 0
    assert Application.objects.filter(pk=agent.pk).exists()


def test_pruning_is_recorded_in_the_audit_trail_with_the_client_it_removed():
    agent = self_registered(name="Forgotten agent")
    client_id = agent.client_id
    age(agent, created=timezone.now() - GRACE - timedelta(hours=1))

    client_prune()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CLIENT_PRUNED)
    assert (event.client_id, event.client_name, event.application) == (client_id, "Forgotten agent", None)
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CLIENT_DELETED).exists()


@authserver_settings(REGISTRATION_RATE_LIMIT=10_000)
def test_an_agent_registering_on_every_reconnect_leaves_a_bounded_table_once_pruning_runs(client, alice):
    # One agent reconnects 1,000 times, registering anew each time; only its last registration is used.
    client.force_login(alice)
    client_ids = []
    for _attempt in range(AGENT_RECONNECTS):
        response = client.post("/o/register/", json.dumps(AGENT), content_type="application/json")
        assert response.status_code == 201
        client_ids.append(response.json()["client_id"])
    assert Application.objects.count() == AGENT_RECONNECTS
    used = Application.objects.get(client_id=client_ids[-1])
    assert connect(client, used)["access_token"]

    # The next day (past the grace period) the scheduled prune runs while the agent's token still lives.
    call_command("prune", stdout=io.StringIO())  # nothing is old enough yet
    assert Application.objects.count() == AGENT_RECONNECTS
    tomorrow = timezone.now() + GRACE + timedelta(minutes=1)
    assert client_prune(now=tomorrow) == AGENT_RECONNECTS - 1
    assert list(Application.objects.values_list("client_id", flat=True)) == [client_ids[-1]]
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CLIENT_PRUNED).count() == AGENT_RECONNECTS - 1


def test_the_prune_command_clears_expired_tokens_and_codes_and_old_audit_events(alice, capsys):
    agent = make_client()
    make_access_token(alice, agent, expires_in=-60)
    live = stored_access_token(make_access_token(alice, agent))
    get_grant_model().objects.create(
        user=alice,
        application=agent,
        code="expired-code",
        expires=timezone.now() - timedelta(minutes=5),
        redirect_uri=REDIRECT_URI,
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    stale = AuditEvent.objects.create(kind=AuditEvent.Kind.LOGIN_FAILED, username="mallory")
    AuditEvent.objects.filter(pk=stale.pk).update(time=timezone.now() - timedelta(days=366))

    call_command("prune")

    assert "Pruned 0 unused client(s), 1 old audit event(s)" in capsys.readouterr().out
    assert list(get_access_token_model().objects.all()) == [live]
    assert not get_grant_model().objects.exists()
    assert not AuditEvent.objects.filter(pk=stale.pk).exists()


def test_refresh_tokens_of_a_pruned_client_go_with_it(client, alice):
    agent = self_registered()
    client.force_login(alice)
    connect(client, agent)
    # Its person never comes back: the tokens run out, the client idles past the retention.
    later = timezone.now() + RETENTION + timedelta(days=40)
    get_access_token_model().objects.update(expires=timezone.now() - timedelta(days=31))
    call_command("prune", stdout=io.StringIO())  # DOT drops the refresh token that ran out
    assert not get_refresh_token_model().objects.exists()

    assert client_prune(now=later) == 1
    assert not Application.objects.exists()


def test_prune_removes_never_used_copies_before_idle_clients():
    long_ago = timezone.now() - timedelta(days=200)
    idle = make_client(name="Idle agent", registration_source="dcr", last_used=long_ago)
    copies = [make_client(name="Chatty Agent", registration_source="dcr") for _ in range(2)]
    Application.objects.filter(pk__in=[idle.pk, *(copy.pk for copy in copies)]).update(created=long_ago)

    assert client_prune(batch_size=1) == 3
    order = AuditEvent.objects.filter(kind=AuditEvent.Kind.CLIENT_PRUNED).order_by("pk")
    assert list(order.values_list("client_name", flat=True)) == ["Chatty Agent", "Chatty Agent", "Idle agent"]
