"""Resource indicators an attacker sends that no URL parser can read (RFC 8707 §2: a ``resource`` is an
absolute URI). An unclosed IPv6 literal made Python's ``urlsplit`` raise inside django-oauth-toolkit's
prefix match, a 500 at the authorization and token endpoints; it names none of this server's resources."""

import pytest

from authserver.service_clients import service_client_create
from tests.authserver.helpers import authorize_url, basic_auth, pkce_pair, redirect_params
from tests.factories import make_client
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

UNPARSABLE = ["http://[", "https://[::1", "https://[x]/star/mcp", "https://]/"]


@pytest.mark.parametrize("resource", UNPARSABLE)
def test_rfc8707_s2_an_unparsable_resource_at_the_token_endpoint_is_invalid_target_never_a_500(client, resource):
    service, secret = service_client_create(name="Nightly report", scopes=["mcp"])
    answer = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "resource": resource},
        **basic_auth(service.client_id, secret),
    )
    assert_json_error(answer, 400, "invalid_target")


@pytest.mark.parametrize("resource", UNPARSABLE)
def test_rfc8707_s2_an_unparsable_resource_at_the_authorization_endpoint_is_invalid_target_never_a_500(
    signed_in, resource
):
    app = make_client()
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, resource=resource))
    assert response.status_code == 302, response.status_code
    assert redirect_params(response)["error"] == "invalid_target"
