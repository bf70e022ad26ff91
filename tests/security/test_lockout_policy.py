"""Wrong passwords lock out the one who typed them, not the owner (OWASP ASVS 4.0 V2.2.1: a lockout
must not be a denial of service of its own): failures count against the pair (username, address),
and an address is locked as a whole only when it sprays many usernames (authserver.lockout)."""

import pytest
from django.test import Client

from authserver.lockout import ADDRESS_FAILURE_FACTOR
from tests.conftest import PASSWORD
from tests.factories import make_user

pytestmark = pytest.mark.django_db

OWNER_ADDRESS = "192.0.2.10"
STRANGER_ADDRESS = "203.0.113.66"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Every failed sign-in hashes a password; the policy is the same with a fast hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


def sign_in(username, password, address, client=None):
    return (client or Client()).post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_owasp_asvs_v2_2_1_wrong_passwords_for_a_made_up_account_never_lock_the_owner_out(settings):
    make_user("owner")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in("made-up", f"guess {attempt}", OWNER_ADDRESS)
    # The made-up account is locked at that address; the owner behind the same address is not.
    assert sign_in("made-up", "another guess", OWNER_ADDRESS).status_code == 429
    assert sign_in("owner", PASSWORD, OWNER_ADDRESS).status_code == 302


def test_owasp_asvs_v2_2_1_a_stranger_elsewhere_guessing_the_owners_password_does_not_lock_her_out(settings):
    make_user("owner")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in("owner", f"guess {attempt}", STRANGER_ADDRESS)
    # The stranger is stopped, even with the right password; the owner at her own address is not.
    assert sign_in("owner", PASSWORD, STRANGER_ADDRESS).status_code == 429
    assert sign_in("owner", PASSWORD, OWNER_ADDRESS).status_code == 302


def test_owasp_asvs_v2_2_1_a_username_in_other_cases_counts_as_one_and_locks_no_other_account(settings):
    make_user("owner")
    make_user("colleague")
    variants = ["owner", "Owner", "OWNER", "oWner", "owNer", "ownEr", "owneR"]
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(variants[attempt % len(variants)], "wrong", STRANGER_ADDRESS)
    # Changing the case of the username buys the guesser no more tries...
    assert sign_in("owner", PASSWORD, STRANGER_ADDRESS).status_code == 429
    # ...and someone else signing in from that address is not locked out with it.
    assert sign_in("colleague", PASSWORD, STRANGER_ADDRESS).status_code == 302


def test_owasp_asvs_v2_2_1_an_address_spraying_many_usernames_is_locked_as_a_whole(settings):
    settings.AXES_FAILURE_LIMIT = 2
    address_limit = ADDRESS_FAILURE_FACTOR * settings.AXES_FAILURE_LIMIT
    victim = Client()
    make_user("victim")
    for number in range(address_limit - 1):
        sign_in(f"user{number}", "Password1", STRANGER_ADDRESS)
    # Below the address's limit, people behind it who mistyped now and then still sign in...
    assert sign_in("victim", PASSWORD, STRANGER_ADDRESS, client=victim).status_code == 302
    victim.logout()
    sign_in("one-more", "Password1", STRANGER_ADDRESS)
    # ...at it, the address is paused for every username; elsewhere nobody is.
    assert sign_in("victim", PASSWORD, STRANGER_ADDRESS, client=victim).status_code == 429
    assert sign_in("victim", PASSWORD, OWNER_ADDRESS).status_code == 302
