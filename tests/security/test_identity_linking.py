"""Whom an ID-JAG acts as (``authserver.identity_links.identity_user``): an attacker's checklist.

A trusted IdP's assertion names a person by ``sub`` and perhaps an ``email``; the token it gets acts as an
account here. Each test is a way the wrong account was (or could be) reached: an address nobody verified,
a look-alike address, a second IdP or a new holder of an address, a subject cut short, text that does not
show what it says, and a refusal that told the client more than "no usable account".
"""

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_access_token_model

from authserver.accounts import account_create
from authserver.models import Application, AuditEvent, IdentityLink, TrustedIdentityProvider
from live.keys import KeyPair
from tests.authserver.helpers import stored_access_token
from tests.authserver.test_identity_assertions import IDP, SECRET, id_jag, present, refused
from tests.factories import make_client, make_company_agent, make_user

pytestmark = pytest.mark.django_db

EMAIL = TrustedIdentityProvider.MatchBy.EMAIL
LOG = "authserver.identity_links"


@pytest.fixture
def idp_key():
    return KeyPair.make("RS256")


@pytest.fixture
def agent():
    return make_company_agent(secret=SECRET)


def trusted_idp(agent, key, *, issuer=IDP, name="Acme Okta", **fields) -> TrustedIdentityProvider:
    """An IdP an operator listed for ``agent``; ``fields`` as the admin would set them."""
    provider = TrustedIdentityProvider(name=name, issuer=issuer, jwks=key.jwks)
    for field, value in fields.items():
        setattr(provider, field, value)
    provider.save()
    provider.clients.add(agent)
    return provider


@pytest.fixture
def email_idp(agent, idp_key):
    """An IdP that matches people by the addresses it verified, trusted for them by the operator."""
    return trusted_idp(agent, idp_key, match_by=EMAIL, trust_verified_email=True)


def acted_as(answer):
    assert answer.status_code == 200, answer.content
    return stored_access_token(answer.json()["access_token"]).user


def verified(email):
    return {"email": email, "email_verified": True}


@pytest.mark.parametrize("email_verified", [False, None, "true", 1, {"value": True}, [True]])
def test_oidc_core_s5_1_an_unverified_email_never_acts_as_an_existing_account(
    client, agent, idp_key, email_idp, email_verified
):
    bob = get_user_model().objects.create_superuser("bob", "bob@example.com", "pw-not-used")
    email_idp.create_users = True
    email_idp.save()
    assertion = id_jag(idp_key, agent, sub="00u-mallory", email="bob@example.com", email_verified=email_verified)
    assert "no verified" in refused(present(client, agent, assertion))
    assert not IdentityLink.objects.exists()
    assert not get_access_token_model().objects.filter(user=bob).exists()
    assert get_user_model().objects.count() == 1  # nor a second account made with bob's address


def test_oidc_core_s5_7_matching_by_email_needs_the_operator_to_trust_the_idps_verification(
    client, agent, idp_key, operator
):
    carol = make_user("carol")
    # A row saved in code (or before the setting existed): save() runs none of the model's checks.
    provider = trusted_idp(agent, idp_key, match_by=EMAIL)
    assert "untrusted" in refused(present(client, agent, id_jag(idp_key, agent, **verified("carol@example.com"))))
    # The admin does not save such a row...
    fields = {"name": provider.name, "issuer": IDP, "jwks_uri": "", "jwks": json.dumps(idp_key.jwks)}
    fields.update(is_active="on", clients=[agent.pk])
    inline = {"links-TOTAL_FORMS": "0", "links-INITIAL_FORMS": "0", "links-MIN_NUM_FORMS": "0"}
    page = f"/admin/authserver/trustedidentityprovider/{provider.pk}/change/"
    answer = operator.post(page, {**fields, **inline, "match_by": "email"})
    assert answer.status_code == 200 and "needs its verified email addresses trusted" in answer.content.decode()
    # ...until the operator trusts its verified addresses; then carol's verified address is carol.
    trusted = operator.post(page, {**fields, **inline, "match_by": "email", "trust_verified_email": "on"})
    assert trusted.status_code == 302
    assert acted_as(present(client, agent, id_jag(idp_key, agent, **verified("carol@example.com")))) == carol


def test_oidc_core_s5_7_an_account_one_idp_made_is_never_linked_to_another_idps_subject(client, agent, idp_key):
    # IdP A creates accounts and is not trusted for addresses: "pat@example.com" unverified, as it says.
    idp_a = trusted_idp(agent, idp_key, create_users=True)
    made = acted_as(present(client, agent, id_jag(idp_key, agent, sub="a-1", email="pat@example.com")))
    assert made.email == ""  # an address nobody trusted is not kept: nothing can match it later
    assert IdentityLink.objects.get(user=made).created_account
    # IdP B matches by verified address: its "pat@example.com" is not the account IdP A made...
    key_b = KeyPair.make("RS256")
    idp_b = trusted_idp(
        agent, key_b, issuer="https://idp-b.example", name="B", match_by=EMAIL, trust_verified_email=True
    )
    from_b = id_jag(key_b, agent, iss=idp_b.issuer, sub="b-9", **verified("pat@example.com"))
    assert "No usable account" in refused(present(client, agent, from_b))
    # ...even once IdP A trusts its verified addresses and the account holds one.
    idp_a.trust_verified_email = True
    idp_a.save()
    again = acted_as(present(client, agent, id_jag(idp_key, agent, sub="a-2", **verified("quinn@example.com"))))
    assert again.email == "quinn@example.com"
    from_b = id_jag(key_b, agent, iss=idp_b.issuer, sub="b-10", **verified("quinn@example.com"))
    assert "No usable account" in refused(present(client, agent, from_b))
    assert set(IdentityLink.objects.values_list("provider", flat=True)) == {idp_a.pk}


def test_oidc_core_s5_7_an_address_given_to_someone_new_does_not_reach_the_old_holders_account(
    client, agent, idp_key, email_idp
):
    dana = make_user("dana")
    first = id_jag(idp_key, agent, sub="00u-dana", **verified("dana@example.com"))
    assert acted_as(present(client, agent, first)) == dana
    # The IdP gives the address to a new employee (a new subject): dana's account is not theirs.
    newcomer = id_jag(idp_key, agent, sub="00u-newcomer", **verified("dana@example.com"))
    assert "No usable account" in refused(present(client, agent, newcomer))
    assert list(IdentityLink.objects.values_list("subject", flat=True)) == ["00u-dana"]


def test_cwe178_look_alike_addresses_never_match_on_any_database(client, agent, idp_key, email_idp):
    alice, _, _ = make_user("alice"), make_user("sam"), make_user("kate")
    # Dotless ı, long ſ (PostgreSQL's UPPER() makes them I and S) and the Kelvin sign (lower() makes it k).
    for number, look_alike in enumerate(["alıce@example.com", "ſam@example.com", "\u212aate@example.com"]):
        assertion = id_jag(idp_key, agent, sub=f"00u-{number}", **verified(look_alike))
        refused(present(client, agent, assertion))
    assert not IdentityLink.objects.exists()
    # ASCII letters in another case are the same address, on every database.
    assert acted_as(present(client, agent, id_jag(idp_key, agent, **verified("ALICE@Example.COM")))) == alice


def test_cwe178_an_address_two_accounts_share_is_refused_never_the_first(client, agent, idp_key, email_idp):
    make_user("erin", email="erin@example.com")
    make_user("erin2", email="Erin@Example.com")
    shared = id_jag(idp_key, agent, **verified("erin@example.com"))
    assert "No usable account" in refused(present(client, agent, shared))
    assert not IdentityLink.objects.exists()


def test_oidc_core_s2_a_sub_longer_than_255_characters_is_refused_never_cut(client, agent, idp_key):
    trusted_idp(agent, idp_key, create_users=True)
    common = "x" * 255
    for sub in (common + "-first-person", common + "-second-person", "00u-\u00e9", "00u-\x00"):
        assert "sub" in refused(present(client, agent, id_jag(idp_key, agent, sub=sub)))
    assert not IdentityLink.objects.exists() and not get_user_model().objects.exists()
    person = acted_as(present(client, agent, id_jag(idp_key, agent, sub=common)))
    assert IdentityLink.objects.get(user=person).subject == common  # 255 is the limit, and kept whole


def test_rfc5321_s4_5_3_1_3_an_address_is_kept_whole_or_refused_never_cut(client, agent, idp_key):
    trusted_idp(agent, idp_key, create_users=True, trust_verified_email=True)
    too_long = f"{'p' * 60}@{'.'.join(['d' * 60] * 4)}.example"  # 312 characters: past RFC 5321's 254
    assert "not an address" in refused(present(client, agent, id_jag(idp_key, agent, sub="p-1", **verified(too_long))))
    assert not get_user_model().objects.exists()
    # One that fits the email field but not a username is kept whole; the username is not a cut address.
    long_address = f"{'q' * 60}@{'d' * 60}.{'e' * 60}.example"
    person = acted_as(present(client, agent, id_jag(idp_key, agent, sub="q-1", **verified(long_address))))
    assert person.email == long_address
    assert "@" not in person.username and person.username.startswith("acme-okta-q-1")


def test_uax9_a_name_with_a_bidi_override_never_becomes_a_display_name(client, agent, idp_key):
    trusted_idp(agent, idp_key, create_users=True, trust_verified_email=True)
    person = acted_as(present(client, agent, id_jag(idp_key, agent, sub="00u-1", name="Invoice\u202egnp.exe")))
    assert person.get_full_name() == "" and "\u202e" not in person.get_username()
    named = acted_as(present(client, agent, id_jag(idp_key, agent, sub="00u-2", name="  Grace Hopper ")))
    assert named.get_full_name() == "Grace Hopper"


@pytest.mark.parametrize(
    "address", ["bob\u200b@example.com", "bob@exa\u202emple.com", '"bob\x01"@example.com', "bob@example.com\u2028"]
)
def test_uax9_an_address_with_control_or_format_characters_never_matches_or_creates(client, agent, idp_key, address):
    bob = make_user("bob")
    trusted_idp(agent, idp_key, match_by=EMAIL, trust_verified_email=True, create_users=True)
    assert "not an address" in refused(present(client, agent, id_jag(idp_key, agent, **verified(address))))
    assert list(get_user_model().objects.all()) == [bob] and not IdentityLink.objects.exists()


def test_cwe204_every_no_usable_account_case_gets_one_answer_and_the_log_says_which(
    client, agent, idp_key, email_idp, caplog
):
    make_user("gone", email="gone@example.com", is_active=False)
    make_user("twin", email="twin@example.com")
    make_user("twin2", email="TWIN@example.com")
    IdentityLink.objects.create(provider=email_idp, subject="00u-left", user=make_user("left", is_active=False))
    key_b = KeyPair.make("RS256")
    idp_b = trusted_idp(agent, key_b, issuer="https://idp-b.example", name="B", create_users=True)
    acted_as(present(client, agent, id_jag(key_b, agent, iss=idp_b.issuer, sub="b-1")))
    taken = IdentityLink.objects.get(provider=idp_b).user
    taken.email = "taken@example.com"
    taken.save()
    cases = [
        ("no account", id_jag(idp_key, agent, sub="s-1", **verified("nobody@example.com"))),
        ("'gone' is deactivated", id_jag(idp_key, agent, sub="s-2", **verified("gone@example.com"))),
        ("'left' is deactivated", id_jag(idp_key, agent, sub="00u-left")),
        ("2 accounts", id_jag(idp_key, agent, sub="s-4", **verified("twin@example.com"))),
        ("linked to B's subject", id_jag(idp_key, agent, sub="s-5", **verified("taken@example.com"))),
    ]
    caplog.set_level(logging.WARNING, logger=LOG)
    answers = set()
    for reason, assertion in cases:
        caplog.clear()
        answers.add(refused(present(client, agent, assertion)))
        assert reason in caplog.text, (reason, caplog.text)
    assert answers == {"No usable account here for this person of Acme Okta"}
    audited = AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED).values_list("detail", flat=True)
    # The operator's audit trail says which case each was; the client was told only the one answer.
    reasons = sorted(detail["reason"] for detail in audited)
    (answer,) = answers
    assert len(reasons) == len(cases) and all(reason.startswith(answer + ": ") for reason in reasons)
    for expected, _assertion in cases:
        assert any(expected in reason for reason in reasons), (expected, reasons)


def test_rfc5321_s4_5_3_1_3_on_a_site_signing_in_by_email_the_address_is_never_numbered_into_another(monkeypatch):
    """A site whose user model signs in by address: the login of an account a trusted IdP makes is the
    address exactly ("bob@example.com-2" is not bob's address, nor anyone's)."""
    user_model = get_user_model()
    make_user("bob")
    monkeypatch.setattr(user_model, "USERNAME_FIELD", "email")
    with pytest.raises(ValueError):
        account_create(username="bob@example.com", email="bob@example.com")
    assert user_model.objects.count() == 1
    made = account_create(username="ignored", email="new@example.com")
    assert made.get_username() == "new@example.com"


# --- Any JSON in the claims identity_user reads ---------------------------------------------------

ABSENT = object()
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b@example.com",
    "\ud800",
    "x" * 256,
    "true",
    "alice@example.com",
    "ALICE@Example.COM",
    "alıce@example.com",
    "alice\u202e@example.com",
    "Alice\u202egnp.exe",
    "p" * 250 + "@example.com",
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
CLAIM = st.one_of(st.just(ABSENT), st.sampled_from(NASTY), JSON)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sub=st.one_of(st.sampled_from(["00u-1", "00u-2"]), CLAIM),
    email=CLAIM,
    email_verified=st.one_of(st.just(True), CLAIM),
    name=CLAIM,
)
def test_rfc7523_s3_any_json_in_the_identity_claims_gets_a_json_answer_never_a_500_nor_someone_else(
    client, agent, idp_key, email_idp, sub, email, email_verified, name
):
    alice = get_user_model().objects.filter(username="alice").first() or make_user("alice")
    if not email_idp.create_users:
        email_idp.create_users = True
        email_idp.save()
    IdentityLink.objects.all().delete()  # every example starts with no one linked
    claims = {"sub": sub, "email": email, "email_verified": email_verified, "name": name}
    claims = {claim: value for claim, value in claims.items() if value is not ABSENT}
    answer = present(client, agent, id_jag(idp_key, agent, **{"sub": None, **claims}))
    if answer.status_code != 200:
        refused(answer)
        return
    if acted_as(answer) == alice:  # only with alice's own address, verified
        assert email_verified is True and isinstance(email, str) and email.lower() == "alice@example.com"


def test_oidc_core_s5_7_an_idps_issuer_cannot_change_under_its_links(client, agent, idp_key):
    """RFC 7519 §4.1.2: a ``sub`` is unique within its issuer only. Repointing a trusted IdP at another
    issuer would hand the CEO's link to whoever has the same id there: the operator is told to add a new IdP."""
    from django.core.exceptions import ValidationError

    provider = trusted_idp(agent, idp_key, create_users=True)
    ceo = make_user("ceo")
    IdentityLink.objects.create(provider=provider, subject="00u1", user=ceo)
    provider.issuer, provider.jwks = "https://acme-sandbox.other-idp.example", KeyPair.make("RS256").jwks
    with pytest.raises(ValidationError) as refusal:
        provider.full_clean()
    assert "new identity provider" in str(refusal.value.message_dict["issuer"])
    provider.refresh_from_db()
    assert provider.issuer == IDP
    # Without links the issuer may still be corrected (a typo before anyone used it).
    IdentityLink.objects.all().delete()
    provider.issuer = "https://acme.okta.example/fixed"
    provider.full_clean()


def test_cwe204_an_untrusted_issuer_and_an_unlisted_client_get_one_answer_naming_no_idp(client, agent, idp_key):
    """Anyone may register a confidential client (RFC 7591): the jwt-bearer grant must not tell it which
    IdPs are trusted here, nor what the operator calls them; the audit trail says which case it was."""
    trusted_idp(agent, idp_key, issuer="https://acme.okta.example", name="Acme Okta (prod tenant 4711)")
    stranger = make_client(
        name="Anyone",
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
    )
    forged = KeyPair.make("RS256")  # no signature is checked before either answer
    answers = [
        refused(present(client, stranger, id_jag(forged, stranger, iss=issuer)))
        for issuer in ("https://nobody.example", "https://acme.okta.example")
    ]
    assert answers[0] == answers[1] and "Acme" not in answers[1]
    reasons = AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED).values_list("detail", flat=True)
    assert any("not listed on Acme Okta" in detail["reason"] for detail in reasons)
