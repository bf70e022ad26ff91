"""A person's email address leaves this site only with the `email` scope (OpenID Connect Core §5.4),
whichever claim carries it: where people sign in with their address (``USERNAME_FIELD = "email"``, or an
account an identity provider made with the address as its username), `username`, `preferred_username`
and `name` are that address, and `profile` alone must not give it away. Checked at every place that
says who the person is: the claims mapping, the MCP `whoami` tool, userinfo and the ID token, and the
consent page's words.
"""

import jwt
import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.test import Client

from authserver.claims import released_claims, user_claims
from tests.authserver.helpers import authorize_url, connect, pkce_pair
from tests.factories import make_access_token, make_client, make_user
from tests.mcpapp.helpers import mcp_session

ADDRESS = "ada@example.com"


class EmailLoginUser(AbstractBaseUser):
    """A site's own user model whose login is the email address, with no names (never saved: the
    claims are read from the instance)."""

    email = models.EmailField(unique=True)
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        app_label = "email_login_site"


def carries_address(answer, address: str = ADDRESS) -> bool:
    return address.casefold() in str(answer).casefold()


def test_oidc_core_s5_4_an_email_login_username_is_released_only_with_the_email_scope():
    claims = user_claims(EmailLoginUser(pk=7, email=ADDRESS))

    profile_only = released_claims(claims, ["mcp", "profile"])
    assert profile_only == {"sub": "7"}
    assert not carries_address(profile_only)

    with_email = released_claims(claims, ["mcp", "profile", "email"])
    assert with_email["username"] == with_email["preferred_username"] == with_email["email"] == ADDRESS


def test_oidc_core_s5_4_a_name_that_falls_back_to_the_address_is_released_only_with_email():
    # No full name: `name` is the username, which is the address.
    claims = user_claims(EmailLoginUser(pk=7, email=ADDRESS))
    assert claims["name"] == ADDRESS
    assert "name" not in released_claims(claims, ["profile"])
    assert released_claims(claims, ["profile", "email"])["name"] == ADDRESS


@pytest.mark.django_db
def test_oidc_core_s5_4_a_username_that_is_the_address_in_another_case_is_released_only_with_email():
    # The default user model, an account made with the address as its username (as an identity
    # provider's just-in-time account is), spelled in another case than the email field.
    person = make_user("Ada@Example.COM", email=ADDRESS, first_name="Ada", last_name="Lovelace")
    released = released_claims(user_claims(person), ["profile"])
    # Her name is hers to show under `profile`; her address is not.
    assert released == {"sub": str(person.pk), "name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace"}


@pytest.mark.django_db
def test_oidc_core_s5_4_a_username_that_is_an_address_is_released_only_with_email_even_without_an_email_field():
    person = make_user("grace@example.org", email="")
    assert not carries_address(released_claims(user_claims(person), ["profile"]), "grace@example.org")
    assert released_claims(user_claims(person), ["profile", "email"])["username"] == "grace@example.org"
    # A username that is no address is what `profile` is for.
    assert released_claims(user_claims(make_user("alice")), ["profile"])["preferred_username"] == "alice"


def whoami(person, scope: str):
    token = make_access_token(person, make_client(), scope=scope)
    return mcp_session(token, lambda client: client.call_tool("whoami", {}))


@pytest.mark.django_db(transaction=True)
def test_oidc_core_s5_4_whoami_shows_an_address_username_only_with_the_email_scope_and_never_fails():
    person = make_user(ADDRESS, email=ADDRESS)
    result = whoami(person, "mcp profile")
    # Identity's keys are all optional: no username is an answer, not a failed tool.
    assert not result.is_error, result.content
    assert result.structured_content["sub"] == str(person.pk)
    assert "username" not in result.structured_content
    assert not carries_address(result.structured_content)
    assert not carries_address([block.model_dump() for block in result.content])

    allowed = whoami(person, "mcp profile email").structured_content
    assert allowed["username"] == allowed["email"] == ADDRESS


@pytest.fixture
def ada_signed_in(client):
    client.force_login(make_user(ADDRESS, email=ADDRESS))
    return client


def userinfo_and_id_token(tokens) -> tuple[dict, dict]:
    userinfo = Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert userinfo.status_code == 200, userinfo.content
    return userinfo.json(), jwt.decode(tokens["id_token"], options={"verify_signature": False})


@pytest.mark.django_db
def test_oidc_core_s5_4_userinfo_and_the_id_token_carry_an_address_username_only_with_email(ada_signed_in):
    userinfo, id_token = userinfo_and_id_token(connect(ada_signed_in, make_client(), scope="openid mcp profile"))
    assert userinfo["sub"] == id_token["sub"]
    assert not carries_address(userinfo) and not carries_address(id_token)

    userinfo, id_token = userinfo_and_id_token(connect(ada_signed_in, make_client(), scope="openid mcp profile email"))
    assert userinfo["email"] == userinfo["preferred_username"] == id_token["email"] == ADDRESS


@pytest.mark.django_db
def test_oidc_core_s5_4_the_consent_page_does_not_promise_the_address_under_profile(ada_signed_in):
    _verifier, challenge = pkce_pair()
    page = ada_signed_in.get(authorize_url(make_client(), challenge, scope="mcp profile"))
    assert page.status_code == 200
    assert "See your username and name, not your email address" in page.content.decode()
