"""Client ID Metadata Documents: an https URL as client_id, resolved by django-oauth-toolkit.

DOT's real fetcher refuses loopback addresses (SSRF hardening), so these tests plug a fetcher that
serves documents from memory into DOT's own ``CIMD_METADATA_FETCHER`` setting; everything after
the fetch (validation, the client row, the authorization flow) is the product's real code.
The real fetcher, against a document server on loopback, is in ``test_metadata_document_fetch.py``.
"""

import pytest
from django.conf import settings
from django.test import override_settings
from oauth2_provider.cimd import CIMDError
from oauth2_provider.models import get_application_model

from authserver.models import AuditEvent
from live.paths import REDIRECT_URI
from tests.authserver.helpers import assert_authorize_refuses, authorize_url, consent_answer, pkce_pair, redirect_params
from tests.factories import make_user

pytestmark = pytest.mark.django_db

CLIENT_ID = "https://agent.example.com/oauth/client.json"
DOCUMENTS = {
    CLIENT_ID: {
        "client_id": CLIENT_ID,
        "client_name": "Metadata-document agent",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
}


class DocumentsFetcher:
    def fetch(self, client_id):
        if client_id not in DOCUMENTS:
            raise CIMDError("not found")
        return DOCUMENTS[client_id], 300


@pytest.fixture(autouse=True)
def fetcher():
    provider = {**settings.OAUTH2_PROVIDER, "CIMD_METADATA_FETCHER": f"{__name__}.DocumentsFetcher"}
    with override_settings(OAUTH2_PROVIDER=provider):
        yield


def test_metadata_document_client_gets_the_consent_page_and_a_code_with_iss(client):
    client.force_login(make_user())
    _verifier, challenge = pkce_pair()
    url = authorize_url(CLIENT_ID, challenge)
    page = client.get(url)
    assert page.status_code == 200
    assert b"Metadata-document agent" in page.content
    stored = get_application_model().objects.get(client_id=CLIENT_ID)
    assert stored.registration_source == "cimd"
    assert stored.client_type == "public"
    registered = AuditEvent.objects.get(kind=AuditEvent.Kind.CLIENT_REGISTERED, client_id=CLIENT_ID)
    assert registered.detail == {"source": "cimd"} and registered.client_name == "Metadata-document agent"

    params = redirect_params(client.post(url, consent_answer(page)))
    assert params["code"] and params["iss"] == "http://testserver"


def test_unknown_metadata_document_is_refused_without_redirecting(client):
    assert_authorize_refuses(client, "https://agent.example.com/missing.json")


@pytest.mark.parametrize("redirect_uri", ["http://agent.example.com/callback", "javascript:alert(1)"])
def test_a_document_with_a_redirect_uri_outside_the_policy_is_refused_and_nothing_is_stored(client, redirect_uri):
    bad_id = "https://agent.example.com/oauth/bad.json"
    DOCUMENTS[bad_id] = {**DOCUMENTS[CLIENT_ID], "client_id": bad_id, "redirect_uris": [redirect_uri]}
    assert_authorize_refuses(client, bad_id, redirect_uri=redirect_uri)
