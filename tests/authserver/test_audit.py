"""The audit trail: each security event of each flow is recorded with time, user, client and address."""

import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model

from authserver.models import Application, AuditEvent, ConsentGrant
from live.paths import MCP_PATH, SSE_PATH
from tests.authserver.helpers import authorize_url, connect, consent_answer, pkce_pair, refresh
from tests.authserver.test_registration import AGENT
from tests.factories import make_client

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.7"
Kind = AuditEvent.Kind


def events(*kinds):
    return list(AuditEvent.objects.filter(kind__in=kinds).order_by("pk"))


def kinds():
    return [event.kind for event in AuditEvent.objects.order_by("pk")]


@pytest.fixture
def signed_in(signed_in):
    """The conftest's signed-in alice, from a known address."""
    signed_in.defaults["REMOTE_ADDR"] = ADDRESS
    return signed_in


@pytest.fixture
def agent():
    return make_client(name="Audited agent", registration_source=Application.RegistrationSource.DCR)


def test_registration_update_and_deletion_of_a_client_are_recorded_with_the_address(client):
    client.defaults["REMOTE_ADDR"] = ADDRESS
    body = client.post("/o/register/", json.dumps(AGENT), content_type="application/json").json()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {body['registration_access_token']}"}
    updated = {**AGENT, "client_id": body["client_id"], "client_name": "Renamed agent"}
    put = client.put(f"/o/register/{body['client_id']}/", json.dumps(updated), content_type="application/json", **auth)
    assert put.status_code == 200
    # RFC 7592 §2.2: the update may rotate the registration access token (DOT does).
    auth = {"HTTP_AUTHORIZATION": f"Bearer {put.json()['registration_access_token']}"}
    assert client.delete(f"/o/register/{body['client_id']}/", **auth).status_code == 204

    registered, changed, deleted = events(Kind.CLIENT_REGISTERED, Kind.CLIENT_UPDATED, Kind.CLIENT_DELETED)
    assert [registered.kind, changed.kind, deleted.kind] == [
        Kind.CLIENT_REGISTERED,
        Kind.CLIENT_UPDATED,
        Kind.CLIENT_DELETED,
    ]
    assert {event.client_id for event in (registered, changed, deleted)} == {body["client_id"]}
    assert registered.detail == {"source": "dcr"} and registered.ip == ADDRESS
    assert deleted.client_name == "Renamed agent" and deleted.application is None and deleted.ip == ADDRESS


def test_consent_granted_then_tokens_issued_and_refreshed_are_recorded(signed_in, alice, agent):
    tokens = connect(signed_in, agent, scope="mcp profile")
    assert refresh(signed_in, agent, tokens["refresh_token"]).status_code == 200

    assert kinds()[-3:] == [Kind.CONSENT_GRANTED, Kind.TOKEN_ISSUED, Kind.TOKEN_REFRESHED]
    granted, issued, refreshed = events(Kind.CONSENT_GRANTED, Kind.TOKEN_ISSUED, Kind.TOKEN_REFRESHED)
    assert granted.detail == {"scope": "mcp profile"}
    for event in (granted, issued, refreshed):
        assert (event.user, event.application, event.ip) == (alice, agent, ADDRESS)
    assert issued.detail["scope"] == "mcp profile"
    assert issued.detail["resource"] == ["http://testserver" + MCP_PATH, "http://testserver" + SSE_PATH]


def test_consent_denied_is_recorded_with_what_was_asked(signed_in, alice, agent):
    _verifier, challenge = pkce_pair()
    url = authorize_url(agent, challenge, scope="mcp email")
    signed_in.post(url, consent_answer(signed_in.get(url), allow=False))

    (denied,) = events(Kind.CONSENT_DENIED)
    assert (denied.user, denied.application, denied.detail) == (alice, agent, {"scope": "mcp email"})
    assert not events(Kind.CONSENT_GRANTED, Kind.TOKEN_ISSUED)


def test_a_token_revoked_by_its_client_is_recorded(signed_in, alice, agent):
    tokens = connect(signed_in, agent)
    response = signed_in.post("/o/revoke_token/", {"token": tokens["access_token"], "client_id": agent.client_id})
    assert response.status_code == 200

    (revoked,) = events(Kind.TOKEN_REVOKED)
    assert (revoked.user, revoked.application, revoked.ip) == (alice, agent, ADDRESS)


def test_revoking_an_unknown_token_records_nothing(signed_in, agent):
    assert signed_in.post("/o/revoke_token/", {"token": "nope", "client_id": agent.client_id}).status_code == 200
    assert not events(Kind.TOKEN_REVOKED)


def test_a_replayed_refresh_token_is_recorded_and_its_family_revoked(signed_in, alice, agent):
    first = connect(signed_in, agent)
    second = refresh(signed_in, agent, first["refresh_token"]).json()

    replay = refresh(signed_in, agent, first["refresh_token"])  # the rotated-away token, presented again
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    (reuse,) = events(Kind.REFRESH_REUSE_DETECTED)
    assert (reuse.user, reuse.application, reuse.ip) == (alice, agent, ADDRESS)
    # RFC 9700 §4.14.2: the legitimate holder's newer refresh token is revoked with the family.
    assert reuse.detail["family"]
    assert refresh(signed_in, agent, second["refresh_token"]).status_code == 400
    assert not get_refresh_token_model().objects.filter(application=agent, revoked__isnull=True).exists()


def test_revoking_a_connected_app_is_recorded(signed_in, alice, agent):
    connect(signed_in, agent)
    grant = ConsentGrant.objects.get(user=alice, application=agent)
    signed_in.post(f"/accounts/connected-apps/{grant.pk}/revoke/")

    (revoked,) = events(Kind.CONSENT_REVOKED)
    assert (revoked.user, revoked.application, revoked.ip) == (alice, agent, ADDRESS)


def test_failed_and_locked_out_sign_ins_are_recorded_with_the_name_tried(client, alice):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=ADDRESS)

    failed = events(Kind.LOGIN_FAILED)
    assert len(failed) == settings.AXES_FAILURE_LIMIT
    assert {(event.username, event.ip, event.user) for event in failed} == {("alice", ADDRESS, None)}
    (locked,) = events(Kind.LOGIN_LOCKED)
    assert (locked.username, locked.ip) == ("alice", ADDRESS)
    assert "wrong" not in json.dumps([event.detail for event in failed])


def test_an_event_outlives_the_user_and_the_client_it_names(signed_in, alice, agent):
    connect(signed_in, agent)
    client_id = agent.client_id
    agent.delete()
    get_user_model().objects.filter(pk=alice.pk).delete()

    issued = events(Kind.TOKEN_ISSUED)[0]
    assert (issued.user, issued.application) == (None, None)
    assert (issued.username, issued.client_id, issued.client_name) == ("alice", client_id, "Audited agent")
    assert issued.time <= timezone.now()
