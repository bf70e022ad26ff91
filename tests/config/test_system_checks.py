"""Misconfiguration is a system check with an id and a hint (``manage.py check``), never a crash at
import; the reference site itself passes every check."""

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings

from authserver import checks as authserver_checks
from authserver.conf import oauth2_provider_settings
from mcpapp import checks as mcpapp_checks
from tests.overrides import authserver_settings, mcpapp_settings


def ids(found) -> set[str]:
    return {message.id for message in found}


def all_ids() -> set[str]:
    return ids(checks.run_checks(include_deployment_checks=False))


def test_the_reference_site_passes_every_check_in_development():
    # In production (SITE_URL https://...) too: tests/config/test_production_settings.py.
    with override_settings(DEBUG=True):
        assert not {found for found in all_ids() if found.startswith(("authserver.", "mcpapp."))}


def test_a_dot_version_outside_the_tested_range_is_a_warning(monkeypatch):
    monkeypatch.setattr(authserver_checks, "version", lambda package: "3.6.0")
    (warning,) = authserver_checks.check_dot_version()
    assert warning.id == "authserver.W001" and "3.6.0" in warning.msg and "3.4.1" in warning.hint


def test_dots_own_defaults_are_a_warning_naming_what_differs():
    # DOT alone offers read/write scopes, implicit and password grants and no registration.
    with override_settings(OAUTH2_PROVIDER={"OIDC_RSA_PRIVATE_KEY": "x"}):
        found = authserver_checks.check_oauth2_provider()
    (warning,) = [message for message in found if message.id == "authserver.W010"]
    assert "OAUTH2_VALIDATOR_CLASS" in warning.msg and "DCR_ENABLED" in warning.msg
    assert "oauth2_provider_settings" in warning.hint


def test_another_application_model_is_an_error():
    with override_settings(OAUTH2_PROVIDER_APPLICATION_MODEL="oauth2_provider.Application"):
        assert "authserver.E002" in ids(authserver_checks.check_oauth2_provider())


def test_openid_connect_without_a_signing_key_is_an_error():
    provider = {**settings.OAUTH2_PROVIDER, "OIDC_ENABLED": True, "OIDC_RSA_PRIVATE_KEY": ""}
    with override_settings(OAUTH2_PROVIDER=provider):
        assert "authserver.E003" in ids(authserver_checks.check_oauth2_provider())


def test_without_a_signing_key_openid_connect_is_off_and_openid_is_not_offered(client, db):
    with override_settings(OAUTH2_PROVIDER=oauth2_provider_settings()):
        assert "authserver.E003" not in ids(authserver_checks.check_oauth2_provider())
        metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert "openid" not in metadata["scopes_supported"] and "mcp" in metadata["scopes_supported"]


@pytest.mark.parametrize("site_url", ["https://mcp.example.com/path", "mcp.example.com", "https://x.example?q=1"])
def test_a_public_url_that_is_not_an_origin_is_an_error(site_url):
    with override_settings(OAUTH2_PROVIDER={**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": site_url}):
        assert "authserver.E004" in ids(authserver_checks.check_oauth2_provider())


@pytest.mark.parametrize("site_url", ["http://mcp.example.com", ""])
def test_a_public_url_without_tls_in_production_is_a_warning_oauth21_section_1_5(site_url):
    provider = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": site_url}
    with override_settings(DEBUG=False, OAUTH2_PROVIDER=provider):
        assert "authserver.W004" in ids(authserver_checks.check_oauth2_provider())
    with override_settings(DEBUG=False, OAUTH2_PROVIDER={**provider, "OIDC_ISS_ENDPOINT": "https://mcp.example.com"}):
        assert "authserver.W004" not in ids(authserver_checks.check_oauth2_provider())


def test_an_unknown_authserver_key_is_an_error():
    with authserver_settings(REGISTRATION_RATE_LIMT=5):
        (error,) = [m for m in authserver_checks.check_site_wiring() if m.id == "authserver.E005"]
    assert "REGISTRATION_RATE_LIMT" in error.msg


def test_a_missing_password_change_revocation_is_a_warning():
    validators = [entry for entry in settings.AUTH_PASSWORD_VALIDATORS if "authserver" not in entry["NAME"]]
    with override_settings(AUTH_PASSWORD_VALIDATORS=validators):
        assert "authserver.W006" in ids(authserver_checks.check_site_wiring())


@pytest.mark.parametrize("middleware", sorted(authserver_checks.MIDDLEWARE_NEEDED))
def test_missing_middleware_is_a_warning_saying_what_is_lost(middleware):
    with override_settings(MIDDLEWARE=[entry for entry in settings.MIDDLEWARE if entry != middleware]):
        (warning,) = [m for m in authserver_checks.check_site_wiring() if m.id == "authserver.W007"]
    assert middleware in warning.msg


def test_urls_without_the_authorization_server_are_an_error():
    with override_settings(ROOT_URLCONF="tests.urls_without_authserver"):
        found = [m for m in authserver_checks.check_site_wiring() if m.id == "authserver.E008"]
    assert len(found) == 2
    assert any('include("authserver.urls")' in message.hint for message in found)


def test_a_per_process_cache_in_production_is_a_warning():
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(DEBUG=False, CACHES=locmem):
        assert "authserver.W009" in ids(authserver_checks.check_site_wiring())
    with override_settings(DEBUG=True, CACHES=locmem):
        assert "authserver.W009" not in ids(authserver_checks.check_site_wiring())


def cache_of(backend: str, **params) -> dict:
    return {"default": {"BACKEND": f"django.core.cache.backends.{backend}", "LOCATION": "django_cache", **params}}


@pytest.mark.parametrize(
    "caches",
    [
        cache_of("db.DatabaseCache"),  # Django's default MAX_ENTRIES: 300
        cache_of("locmem.LocMemCache", OPTIONS={"MAX_ENTRIES": 99_999}),
        cache_of("filebased.FileBasedCache", max_entries="5000"),
    ],
)
def test_cwe799_rfc7009_s1_a_default_cache_that_culls_a_few_hundred_entries_is_a_warning(caches):
    with override_settings(CACHES=caches):
        (warning,) = authserver_checks.check_cache_capacity()
    assert warning.id == "authserver.W017" and "rate-limit counts" in warning.msg
    assert "MAX_ENTRIES" in warning.hint and "noeviction" in warning.hint


@pytest.mark.parametrize(
    "caches",
    [
        settings.CACHES,  # the reference site's: a million entries
        cache_of("db.DatabaseCache", OPTIONS={"MAX_ENTRIES": 100_000}),
        cache_of("redis.RedisCache", LOCATION="redis://127.0.0.1:6379/0"),
    ],
)
def test_cwe799_a_cache_with_room_or_one_that_does_not_cull_passes_the_capacity_check(caches):
    with override_settings(CACHES=caches):
        assert authserver_checks.check_cache_capacity() == []


def test_an_unknown_mcpapp_key_is_an_error():
    with mcpapp_settings(MOUNT_PATHS="/x"):
        assert "mcpapp.E002" in ids(mcpapp_checks.check_settings())


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/path", "null"])
def test_an_allowed_origin_that_is_not_an_origin_is_an_error(origin):
    with mcpapp_settings(ALLOWED_ORIGINS=[origin]):
        assert "mcpapp.E003" in ids(mcpapp_checks.check_settings())


def test_a_revocation_poll_longer_than_a_tombstone_lives_is_an_error():
    with mcpapp_settings(TOKEN_CACHE_SECONDS=60, TOKEN_REVOCATION_POLL_SECONDS=600):
        (error,) = [m for m in mcpapp_checks.check_settings() if m.id == "mcpapp.E004"]
    assert "miss a revocation" in error.msg
    with mcpapp_settings(TOKEN_CACHE_SECONDS=60, TOKEN_REVOCATION_POLL_SECONDS=5):
        assert "mcpapp.E004" not in ids(mcpapp_checks.check_settings())


def test_mounting_mcp_at_the_root_is_an_error():
    with mcpapp_settings(MOUNT_PATH="/"):
        assert "mcpapp.E005" in ids(mcpapp_checks.check_settings())


def test_another_apps_runserver_is_a_warning(monkeypatch):
    # `mcpapp` listed after `django.contrib.staticfiles`: Django's WSGI runserver would answer 404 on MCP.
    monkeypatch.setattr(mcpapp_checks, "get_commands", lambda: {"runserver": "django.contrib.staticfiles"})
    (warning,) = mcpapp_checks.check_runserver()
    assert warning.id == "mcpapp.W006" and "before" in warning.hint


def test_a_missing_client_secret_hasher_is_an_error():
    hashers = [hasher for hasher in settings.PASSWORD_HASHERS if "authserver" not in hasher]
    with override_settings(PASSWORD_HASHERS=hashers):
        (error,) = [m for m in authserver_checks.check_site_wiring() if m.id == "authserver.E011"]
    assert "authserver.hashers.ClientSecretHasher" in error.hint


def test_cors_headers_without_the_mcp_protocol_version_are_a_warning():
    with override_settings(CORS_ALLOW_HEADERS=("authorization", "content-type")):
        assert "authserver.W012" in ids(authserver_checks.check_site_wiring())


# --- Sign-in lockout (django-axes) ----------------------------------------------------------
# django-axes' own defaults, on a site whose user model signs in with the email address.
AXES_DEFAULTS = {
    "AXES_LOCKOUT_PARAMETERS": ["ip_address"],
    "AXES_COOLOFF_TIME": None,
    "AXES_USERNAME_FORM_FIELD": "email",
    "AXES_USERNAME_CALLABLE": None,
    "AXES_CLIENT_IP_CALLABLE": None,
}


def lockout_warnings(**axes_settings) -> list:
    with override_settings(**axes_settings):
        return authserver_checks.check_sign_in_lockout()


def test_owasp_asvs_v2_2_1_a_lockout_by_address_alone_is_a_warning():
    (warning,) = [m for m in lockout_warnings(**AXES_DEFAULTS) if m.id == "authserver.W013"]
    assert "everyone signing in from that address, the owner included" in warning.msg
    assert "axes_settings()" in warning.hint


def test_owasp_asvs_v2_2_1_a_lockout_by_username_alone_is_a_warning_as_is_one_by_address():
    found = lockout_warnings(AXES_LOCKOUT_PARAMETERS=["username", "ip_address"])
    account, address = [m for m in found if m.id == "authserver.W013"]
    assert "anyone who knows a username can lock it" in account.msg and "the owner included" in address.msg


def test_nist_sp800_63b_s5_2_2_a_lockout_that_never_expires_is_a_warning():
    (warning,) = [m for m in lockout_warnings(**AXES_DEFAULTS) if m.id == "authserver.W015"]
    assert "axes_reset" in warning.msg and "timedelta(minutes=15)" in warning.hint


def test_owasp_asvs_v2_2_1_a_lockout_that_reads_no_username_from_the_sign_in_form_is_a_warning():
    # The pair, but axes reads `email` where the form posts `username`: every failure is (None, address).
    pair = {**AXES_DEFAULTS, "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]]}
    (warning,) = [m for m in lockout_warnings(**pair) if m.id == "authserver.W016"]
    assert "'email'" in warning.msg and 'AXES_USERNAME_FORM_FIELD = "username"' in warning.hint


def test_nist_sp800_63b_s5_2_2_rfc6177_a_lockout_counting_each_ipv6_address_apart_is_a_warning():
    (warning,) = [m for m in lockout_warnings(**AXES_DEFAULTS) if m.id == "authserver.W018"]
    assert "/64" in warning.msg and '"authserver.lockout.lockout_address"' in warning.hint
    # The pair counts addresses too; a site's own address reading is its policy; no address, no warning.
    pair = {"AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]], "AXES_CLIENT_IP_CALLABLE": None}
    assert "authserver.W018" in ids(lockout_warnings(**pair))
    assert "authserver.W018" not in ids(lockout_warnings(**{**pair, "AXES_CLIENT_IP_CALLABLE": "site.client_ip"}))
    by_username = {"AXES_LOCKOUT_PARAMETERS": ["username"], "AXES_CLIENT_IP_CALLABLE": None}
    assert "authserver.W018" not in ids(lockout_warnings(**by_username))


def test_owasp_asvs_v2_2_1_the_lockout_policy_the_apps_ship_passes_the_lockout_check():
    from authserver.conf import axes_settings

    assert lockout_warnings(**{**AXES_DEFAULTS, **axes_settings()}) == []
    assert lockout_warnings(**{**axes_settings(), "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]]}) == []
