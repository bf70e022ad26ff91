"""Operators manage users, clients and tokens in the Django admin."""

import pytest
from django.contrib.auth import get_user_model

from tests.factories import make_access_token, make_client, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used"))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/auth/user/",
        "/admin/authserver/application/",
        "/admin/oauth2_provider/accesstoken/",
        "/admin/oauth2_provider/refreshtoken/",
        "/admin/oauth2_provider/grant/",
    ],
)
def test_admin_lists_users_clients_and_tokens(operator, path):
    make_access_token(make_user("alice"), make_client(name="Listed agent"))
    response = operator.get(path)
    assert response.status_code == 200


def test_admin_shows_the_client(operator):
    app = make_client(name="Listed agent")
    response = operator.get(f"/admin/authserver/application/{app.pk}/change/")
    assert response.status_code == 200
    assert b"Listed agent" in response.content


def test_admin_login_is_not_the_product_login(client):
    # People sign in at /accounts/login/; the admin keeps its own page for staff.
    assert client.get("/accounts/login/").templates[0].name == "registration/login.html"
