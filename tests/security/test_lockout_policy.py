"""Wrong passwords lock out the one who typed them, not the owner (OWASP ASVS 4.0 V2.2.1: a lockout
must not be a denial of service of its own): failures count against the pair (username, address),
and an address is locked as a whole only when it sprays many usernames (authserver.lockout)."""

import pytest
from axes.models import AccessAttempt, AccessLog
from django.core.cache import cache
from django.db.models import F, Sum
from django.test import Client, RequestFactory

from authserver.conf import app_settings
from authserver.lockout import ACCOUNT_FAILURE_LIMIT, ADDRESS_FAILURE_FACTOR, address_known_for_account
from authserver.models import AuditEvent
from tests.conftest import PASSWORD
from tests.factories import make_user
from tests.overrides import authserver_settings

pytestmark = pytest.mark.django_db

OWNER_ADDRESS = "192.0.2.10"
STRANGER_ADDRESS = "203.0.113.66"


# Bounded audit windows align to multiples of their length since the epoch: one this long holds a test.
WINDOW = 10**6


@pytest.fixture(autouse=True)
def fresh_cache():
    # The bounded audit's counters live in the cache (a local-memory one outlives a test).
    cache.clear()


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


# --- An IPv6 /64 is one address (NIST SP 800-63B §5.2.2, RFC 6177) -------------------------------------


def test_nist_sp800_63b_s5_2_2_rfc6177_addresses_of_one_ipv6_64_count_as_one_against_an_account(settings):
    make_user("owner")
    # One subscriber's /64: a new address for every guess buys none.
    answers = [
        sign_in("owner", f"guess {host}", f"2001:db8:1:2::{host:x}").status_code
        for host in range(1, settings.AXES_FAILURE_LIMIT + 1)
    ]
    # The failure that reaches the limit is answered with the pause already.
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert sign_in("owner", PASSWORD, "2001:db8:1:2::ffff").status_code == 429
    assert sign_in("owner", PASSWORD, "2001:db8:1:2:aaaa:bbbb:cccc:dddd").status_code == 429
    # The next /64 is someone else: the owner there signs in.
    assert sign_in("owner", PASSWORD, "2001:db8:1:3::1").status_code == 302


def test_nist_sp800_63b_s5_2_2_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address(settings):
    make_user("owner")
    # A dual-stack listener sees 203.0.113.66 as ::ffff:203.0.113.66.
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        address = f"::ffff:{STRANGER_ADDRESS}" if attempt % 2 else STRANGER_ADDRESS
        sign_in("owner", f"guess {attempt}", address)
    assert sign_in("owner", PASSWORD, STRANGER_ADDRESS).status_code == 429
    assert sign_in("owner", PASSWORD, f"::ffff:{STRANGER_ADDRESS}").status_code == 429


def test_owasp_asvs_v2_2_1_rfc6177_an_ipv6_64_spraying_many_usernames_is_locked_as_a_whole(settings):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("victim")
    for number in range(ADDRESS_FAILURE_FACTOR * settings.AXES_FAILURE_LIMIT):
        sign_in(f"user{number}", "Password1", f"2001:db8:5:6::{number + 1:x}")
    # Every address of that /64 is paused for every username; another /64 is not.
    assert sign_in("victim", PASSWORD, "2001:db8:5:6::abcd").status_code == 429
    assert sign_in("victim", PASSWORD, "2001:db8:5:7::abcd").status_code == 302


def test_the_audit_trail_keeps_the_ipv6_address_itself_not_the_64_the_lockout_counts(settings):
    make_user("owner")
    sign_in("owner", "wrong", "2001:db8:1:2::7")
    sign_in("owner", PASSWORD, "2001:db8:9:9::42")
    failed = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    assert (failed.username, failed.ip) == ("owner", "2001:db8:1:2::7")
    # What django-axes counts by: the /64, written as its first address.
    assert AccessAttempt.objects.get().ip_address == "2001:db8:1:2::"
    assert AccessLog.objects.get().ip_address == "2001:db8:9:9::"


def test_a_sign_in_from_no_usable_address_is_answered_not_a_500():
    make_user("owner")
    assert sign_in("owner", "wrong", "not-an-address").status_code == 200
    assert sign_in("owner", PASSWORD, "not-an-address").status_code == 302


# --- At most 100 failures per account, from every address (NIST SP 800-63B §5.2.2) ---------------------


def guess_from_many_addresses(*, username, failures, per_address, first=1) -> list[int]:
    """``failures`` wrong passwords for ``username``, ``per_address`` from each of 198.51.100.<first>...;
    the status codes answered."""
    return [
        sign_in(username, f"guess {number}", f"198.51.100.{first + number // per_address}").status_code
        for number in range(failures)
    ]


def test_nist_sp800_63b_s5_2_2_an_account_failing_100_times_is_locked_from_every_address_it_never_used(settings):
    owner = make_user("owner")
    make_user("colleague")
    home = Client()
    assert sign_in("owner", PASSWORD, OWNER_ADDRESS, client=home).status_code == 302  # her address, known
    home.logout()
    per_address = settings.AXES_FAILURE_LIMIT - 1  # below every pair's limit
    failures = ACCOUNT_FAILURE_LIMIT - per_address
    answers = guess_from_many_addresses(username="owner", failures=failures, per_address=per_address)
    assert answers == [200] * failures
    # Below the ceiling, the owner signs in from an address new to her account...
    assert sign_in("owner", PASSWORD, "192.0.2.201").status_code == 302
    answers = guess_from_many_addresses(username="OWNER", failures=per_address, per_address=per_address, first=200)
    # ...the failure that reaches it is answered with the pause (from the 200th address of these)...
    assert answers == [200] * (per_address - 1) + [429]
    # ...and nobody signs in from an address new to the account, the right password or not.
    assert sign_in("owner", "guess 101", "192.0.2.202").status_code == 429
    assert sign_in("owner", PASSWORD, "192.0.2.203").status_code == 429
    assert not AccessLog.objects.filter(ip_address__in=["192.0.2.202", "192.0.2.203"]).exists()
    # The owner at the addresses she signed in from goes on signing in; the address itself is not paused.
    assert sign_in("owner", PASSWORD, OWNER_ADDRESS).status_code == 302
    assert sign_in("owner", PASSWORD, "192.0.2.201").status_code == 302
    assert sign_in("colleague", PASSWORD, "192.0.2.203").status_code == 302
    (locked,) = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_LOCKED, username__iexact="owner")
    assert (locked.ip, locked.username) == ("198.51.100.200", "OWNER") and owner.pk


def test_nist_sp800_63b_s5_2_2_the_account_lock_ends_with_the_cool_off(settings):
    make_user("owner")
    per_address = settings.AXES_FAILURE_LIMIT - 1
    answers = guess_from_many_addresses(username="owner", failures=ACCOUNT_FAILURE_LIMIT, per_address=per_address)
    assert answers == [200] * (ACCOUNT_FAILURE_LIMIT - 1) + [429]
    assert sign_in("owner", PASSWORD, "192.0.2.202").status_code == 429
    # The cool-off passes (the attempts' clock moved back, as django-axes reads it).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)
    assert sign_in("owner", PASSWORD, "192.0.2.202").status_code == 302


def test_nist_sp800_63b_s5_2_2_one_address_alone_never_reaches_the_account_ceiling(settings):
    make_user("owner")
    # One address hammers the account well past the ceiling, with a new User-Agent each time.
    for number in range(ACCOUNT_FAILURE_LIMIT + 20):
        answer = Client(HTTP_USER_AGENT=f"agent {number}").post(
            "/accounts/login/", {"username": "owner", "password": f"guess {number}"}, REMOTE_ADDR=STRANGER_ADDRESS
        )
        assert answer.status_code == (200 if number < settings.AXES_FAILURE_LIMIT - 1 else 429)
    # A refused sign-in counts nothing: the owner elsewhere is not locked out.
    failures = AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"]
    assert failures == settings.AXES_FAILURE_LIMIT
    assert sign_in("owner", PASSWORD, "192.0.2.202").status_code == 302


# --- Audit rows a locked-out or made-up sign-in writes stay bounded (CWE-770) ----------------------------


def login_events(kind):
    return list(AuditEvent.objects.filter(kind=kind).order_by("pk"))


@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_cwe_770_sign_ins_refused_while_locked_out_write_one_row_that_counts_them(settings):
    make_user("owner")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in("owner", f"guess {attempt}", STRANGER_ADDRESS)
    # The first failures for a real account, and the lock, are each recorded at once, naming it.
    failed = login_events(AuditEvent.Kind.LOGIN_FAILED)
    assert [(event.username, event.ip) for event in failed] == [("owner", STRANGER_ADDRESS)] * len(failed)
    assert len(failed) == settings.AXES_FAILURE_LIMIT
    (locked,) = login_events(AuditEvent.Kind.LOGIN_LOCKED)
    assert (locked.username, locked.ip) == ("owner", STRANGER_ADDRESS)

    for attempt in range(40):
        assert sign_in("owner", f"more {attempt}", STRANGER_ADDRESS).status_code == 429
    # 40 refusals: no more failures, one more row saying how many (to within a factor of two).
    assert len(login_events(AuditEvent.Kind.LOGIN_FAILED)) == settings.AXES_FAILURE_LIMIT
    locked_first, refused = login_events(AuditEvent.Kind.LOGIN_LOCKED)
    assert locked_first == locked
    assert (refused.ip, refused.detail["reason"], refused.detail["refusals_at_least"]) == (
        STRANGER_ADDRESS,
        "already locked out",
        32,
    )


@authserver_settings(AUDIT_REFUSAL_WINDOW_SECONDS=WINDOW)
def test_cwe_770_failures_for_made_up_accounts_write_bounded_rows_and_a_real_accounts_is_still_recorded(settings):
    make_user("owner")
    rows_per_window = app_settings.AUDIT_REFUSAL_ROWS_PER_WINDOW
    # Made-up usernames from many addresses (each below every limit): a few rows, not one per request.
    for number in range(60):
        sign_in(f"made-up-{number}", "guess", f"2001:db8:{number:x}::1")
    made_up = login_events(AuditEvent.Kind.LOGIN_FAILED)
    assert len(made_up) == rows_per_window + 1  # the last one counts the rest
    assert {event.detail["reason"] for event in made_up[:rows_per_window]} == {"no such account"}
    assert made_up[0].detail["username_tried"] == "made-up-0" and made_up[0].ip == "2001:db8::1"
    assert made_up[-1].detail["refusals_at_least"] >= (60 - rows_per_window) // 2
    # A guess at a real account after the flood is recorded at once, naming it.
    sign_in("owner", "guess", STRANGER_ADDRESS)
    last = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).latest("pk")
    assert (last.username, last.ip, last.detail) == ("owner", STRANGER_ADDRESS, {})


@pytest.mark.parametrize("victim, twin", [("strasse", "straße"), ("Strasse", "strasse")])
def test_cwe178_nist_sp800_63b_s5_2_2_an_account_whose_name_folds_to_the_victims_resets_nothing_of_hers(
    settings, victim, twin
):
    """``"straße".casefold() == "strasse"``, and a username may differ from another by case alone: a
    sign-in as one is not a sign-in as the other. The attacker's own account's successes must neither
    reset the victim's count at the attacker's address nor make it one the victim is known at."""
    make_user(victim, email="victim@example.com")
    make_user(twin, email="twin@example.com")
    limit = settings.AXES_FAILURE_LIMIT
    statuses = []
    for round_ in range(3):
        for attempt in range(limit - 1):
            statuses.append(sign_in(victim, f"guess {round_}-{attempt}", STRANGER_ADDRESS).status_code)
        assert sign_in(twin, PASSWORD, STRANGER_ADDRESS).status_code == 302
    assert 429 in statuses, statuses  # the victim's pair at this address was paused after `limit` guesses
    # The owner, from her own address, is not.
    assert sign_in(victim, PASSWORD, OWNER_ADDRESS).status_code == 302
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=STRANGER_ADDRESS)
    request.axes_ip_address = STRANGER_ADDRESS
    assert not address_known_for_account(request=request, credentials={"username": victim})
