"""The OAuth client model: django-oauth-toolkit's, swapped in at the start so policy can grow on it."""

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication, AccessToken, Grant, IDToken, RefreshToken
from oauth2_provider.settings import oauth2_settings

from authserver.display_text import display_text_problem
from authserver.registration import redirect_uri_matches, redirect_uri_problem
from authserver.scopes import scope_registry

# A secret typed by a person must carry at least ~190 bits even if drawn from 62 characters.
MIN_CLIENT_SECRET_LENGTH = 32


def _is_plaintext(secret: str) -> bool:
    try:
        identify_hasher(secret)
    except ValueError:
        return True
    return False


# hashlib.sha256() looks the algorithm up in OpenSSL (3.x) on every call; a copy of one does not.
_SHA256 = hashlib.sha256()


def token_checksum(token: str) -> str:
    """What DOT looks a token up by (with COMPLIANT_BCP_RFC9700_TOKEN_STORAGE, all it stores): its SHA-256."""
    digest = _SHA256.copy()
    digest.update(token.encode("utf-8"))
    return digest.hexdigest()


def signing_algorithm_default() -> str:
    """RS256 when the site has a key to sign ID tokens with (OpenID Connect on); else none, which DOT
    requires when there is no key (OpenID Connect off, ``openid`` not offered)."""
    if oauth2_settings.OIDC_RSA_PRIVATE_KEY:
        return AbstractApplication.RS256_ALGORITHM
    return AbstractApplication.NO_ALGORITHM


class Application(AbstractApplication):
    class AuthMethod(models.TextChoices):
        """RFC 7591 §2 ``token_endpoint_auth_method``: how the client proves who it is at the token,
        revocation and introspection endpoints. A client authenticates only the way it registered."""

        NONE = "none", "none (a public client: identifies itself, never authenticates)"
        CLIENT_SECRET_BASIC = "client_secret_basic", "client_secret_basic (HTTP Basic)"
        CLIENT_SECRET_POST = "client_secret_post", "client_secret_post (in the request body)"
        PRIVATE_KEY_JWT = "private_key_jwt", "private_key_jwt (a JWT signed with the client's key, no secret)"

    # ID tokens are signed with the site's RSA key, so any client (registered ones included) can
    # ask for `openid`; DOT's default of no algorithm makes the token endpoint fail for them.
    algorithm = models.CharField(
        max_length=5,
        choices=AbstractApplication.ALGORITHM_TYPES,
        default=signing_algorithm_default,
        blank=True,
        verbose_name="algorithm",
    )
    last_used = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the client last got a code or a token"
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="An inactive client can neither authorize nor get or use tokens"
    )
    token_endpoint_auth_method = models.CharField(
        "token endpoint authentication method",
        max_length=32,
        choices=AuthMethod.choices,
        blank=True,
        help_text="Set from the client type when left empty: none for public clients, client_secret_basic otherwise",
    )
    may_introspect = models.BooleanField(
        "may introspect tokens",
        default=False,
        help_text="A confidential client an operator trusts (a resource server) may ask what any token is "
        "(RFC 7662). Never set for clients that registered themselves.",
    )
    allowed_scope = models.TextField(
        "scopes it may get",
        blank=True,
        help_text="Space-separated. A service client gets these (or fewer) without anyone consenting; a client "
        "presenting an identity assertion gets at most these. Empty: any scope a person or an IdP grants.",
    )
    jwks = models.JSONField(
        "public keys (JWKS)",
        default=dict,
        blank=True,
        help_text='For private_key_jwt: the client\'s public keys, as a JWK Set ({"keys": [...]}). Or a JWKS URI.',
    )
    jwks_uri = models.URLField(
        "JWKS URI",
        max_length=2000,
        blank=True,
        help_text="For private_key_jwt: where the client publishes its public keys (https; fetched like client "
        "metadata documents, cached, fetched again for an unknown key id)",
    )
    client_metadata = models.JSONField(
        "other client metadata",
        default=dict,
        blank=True,
        help_text="What else the client registered (RFC 7591 §2: its URLs, software, contacts), echoed back to it",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "client"

    def save(self, *args, **kwargs):
        if self.client_type == self.CLIENT_PUBLIC:
            # RFC 6749 §2.1: a public client cannot keep a secret, so it gets none. DOT would make
            # one and hash it with PBKDF2 on every anonymous registration: CPU spent for nothing.
            self.client_secret = ""
            self.hash_client_secret = False
            self.token_endpoint_auth_method = self.AuthMethod.NONE
            self.jwks, self.jwks_uri = {}, ""  # no method that would read them
        elif self.token_endpoint_auth_method == self.AuthMethod.PRIVATE_KEY_JWT:
            # RFC 7523 §2.2: the client proves itself with its key; no shared secret exists at all.
            self.client_secret = ""
            self.hash_client_secret = False
        elif self.token_endpoint_auth_method in ("", self.AuthMethod.NONE):
            # RFC 7591 §2: client_secret_basic unless the client registered another method.
            self.token_endpoint_auth_method = self.AuthMethod.CLIENT_SECRET_BASIC
        super().save(*args, **kwargs)

    def redirect_uri_allowed(self, uri: str) -> bool:
        # OAuth 2.1 §4.1.1 / RFC 9700 §4.1.3: exact string comparison with a registered URI (DOT
        # compares parsed components, so https://APP.EXAMPLE/cb matched https://app.example/cb),
        # with only the loopback port exception of RFC 8252 §7.3.
        registered_uris = self.redirect_uris.split()
        return any(redirect_uri_matches(registered=registered, requested=uri) for registered in registered_uris)

    def is_usable(self, request) -> bool:
        # DOT's hook, asked at authorization, at the token endpoint and when a token is used.
        return self.is_active and super().is_usable(request)

    @property
    def may_introspect_tokens(self) -> bool:
        """RFC 7662 §2.1 / §4: a confidential client an operator made and allowed to introspect."""
        return (
            self.may_introspect
            and self.client_type == self.CLIENT_CONFIDENTIAL
            and self.registration_source == self.RegistrationSource.MANUAL
        )

    @property
    def is_service(self) -> bool:
        """A service client: an automation an operator made, which gets tokens with ``client_credentials``
        and acts as its own service user (``user``), with no person and no consent page."""
        return (
            self.authorization_grant_type == self.GRANT_CLIENT_CREDENTIALS
            and self.registration_source == self.RegistrationSource.MANUAL
            and self.client_type == self.CLIENT_CONFIDENTIAL
        )

    @property
    def allowed_scopes(self) -> list[str] | None:
        """The scopes an operator limited this client to, or None: no limit."""
        return self.allowed_scope.split() or None

    @property
    def is_first_party(self) -> bool:
        """First-party (the site's own) clients skip consent: DOT's ``skip_authorization``."""
        return self.skip_authorization

    def get_allowed_schemes(self):
        # RFC 9700 §2.1 / RFC 8252 §7: https always; another scheme (loopback http, a native app's
        # private-use scheme) only when every redirect URI this client registered with it passes
        # the redirect URI policy, so one stray URI (e.g. on a row older than the policy) opens nothing.
        schemes = list(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)
        by_scheme: dict[str, list[str]] = {}
        for uri in self.redirect_uris.split():
            by_scheme.setdefault(urlsplit(uri).scheme.lower(), []).append(uri)
        for scheme, uris in by_scheme.items():
            if scheme not in schemes and not any(redirect_uri_problem(uri) for uri in uris):
                schemes.append(scheme)
        return schemes

    def clean(self):
        super().clean()
        # The name is shown to people on the consent page: it must show what it says.
        problem = display_text_problem(self.name)
        if problem:
            raise ValidationError({"name": f"The name {problem}."})
        if self.may_introspect and not self.may_introspect_tokens:
            refusal = (
                "Only a confidential client an operator made may introspect tokens, not one that registered itself."
            )
            raise ValidationError({"may_introspect": refusal})
        unknown = scope_registry.unknown(self.allowed_scope.split())
        if unknown:
            # A typo would silently leave a service client with fewer scopes, or none (RFC 6749 §3.3).
            raise ValidationError({"allowed_scope": f"Not scopes of this site: {' '.join(unknown)}."})
        if self.authorization_grant_type == self.GRANT_CLIENT_CREDENTIALS and not self.may_introspect:
            # A service client (a resource server that only introspects needs none, and gets no tokens
            # for itself). Its service user is made when it is saved without one (authserver.service_clients).
            service_problems = {}
            if self.client_type != self.CLIENT_CONFIDENTIAL:
                service_problems["client_type"] = "A service client authenticates: it must be confidential."
            if not self.allowed_scope.split():
                # RFC 6749 §3.3 / §4.4: with none listed it would get no token at all, never every scope.
                service_problems["allowed_scope"] = "Name the scopes this service client may get."
            if service_problems:
                raise ValidationError(service_problems)
        if self.token_endpoint_auth_method == self.AuthMethod.PRIVATE_KEY_JWT:
            from authserver.client_keys import key_source_problem

            problem = key_source_problem(jwks=self.jwks, jwks_uri=self.jwks_uri)
            if problem:
                raise ValidationError({"jwks": f"private_key_jwt: {problem}"})
        # The redirect URI policy (authserver.registration) holds however a client is made:
        # registration, a metadata document, the admin or `create_client`.
        problems = [problem for uri in self.redirect_uris.split() if (problem := redirect_uri_problem(uri))]
        if problems:
            raise ValidationError({"redirect_uris": problems})
        # Client secrets are stored with a fast hash (authserver/hashers.py), safe only for a secret
        # too long to guess: one an operator types in must be as long as a generated one is strong.
        needs_secret = self.token_endpoint_auth_method != self.AuthMethod.PRIVATE_KEY_JWT
        if self.client_type == self.CLIENT_CONFIDENTIAL and needs_secret and _is_plaintext(self.client_secret):
            if len(self.client_secret) < MIN_CLIENT_SECRET_LENGTH:
                too_short = f"Use at least {MIN_CLIENT_SECRET_LENGTH} characters, or keep the generated secret."
                raise ValidationError({"client_secret": too_short})


class ConsentGrant(models.Model):
    """What a person allowed one client, remembered so they are asked once (per user, per client).

    A different client with the same name is a different row: consent follows the ``client_id``.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consent_grants")
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="consent_grants",
        verbose_name="client",
    )
    scope = models.TextField(help_text="Space-separated scopes the person allowed")
    tools_seen = models.JSONField(
        "tools shown",
        default=list,
        blank=True,
        help_text="The tools those scopes unlocked when the person last allowed them; a new one that can "
        "change data is shown to the person before the client gets it",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    last_used = models.DateTimeField(null=True, blank=True, help_text="When the client last got a token")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="one_consent_per_user_client")]
        verbose_name = "consent grant"

    def __str__(self):
        return f"{self.user} → {self.application}"

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()


class AuditEvent(models.Model):
    """One security event, kept for ``AUDIT_RETENTION_DAYS``; written by ``authserver.audit.audit_record``.

    The user and client are copied as text too, so an event still says who and what after the
    account or the client is gone (pruned clients above all).
    """

    class Kind(models.TextChoices):
        CLIENT_REGISTERED = "client.registered", "client registered"
        CLIENT_UPDATED = "client.updated", "client updated"
        CLIENT_DELETED = "client.deleted", "client deleted"
        CLIENT_PRUNED = "client.pruned", "client pruned"
        CONSENT_GRANTED = "consent.granted", "consent granted"
        CONSENT_DENIED = "consent.denied", "consent denied"
        CONSENT_REVOKED = "consent.revoked", "consent revoked"
        CODE_REPLAY_DETECTED = "code.replay_detected", "authorization code replay detected"
        TOKEN_ISSUED = "token.issued", "token issued"
        TOKEN_REFRESHED = "token.refreshed", "token refreshed"
        TOKEN_REVOKED = "token.revoked", "token revoked"
        REFRESH_REUSE_DETECTED = "token.reuse_detected", "refresh token reuse detected"
        LOGIN_FAILED = "login.failed", "login failed"
        LOGIN_LOCKED = "login.locked", "login locked out"
        SIGNED_OUT_EVERYWHERE = "account.signed_out", "signed out everywhere"
        ASSERTION_REFUSED = "assertion.refused", "identity assertion refused"
        ASSERTION_ISSUED = "assertion.issued", "identity assertion issued"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="client",
    )
    client_id = models.CharField("client ID", max_length=255, blank=True, db_index=True)
    client_name = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-pk"]
        verbose_name = "audit event"

    def __str__(self):
        return f"{self.get_kind_display().capitalize()}, {self.time:%Y-%m-%d %H:%M:%S}"


class TrustedIdentityProvider(models.Model):
    """A company's identity provider whose Identity Assertion JWT Authorization Grants (ID-JAG, MCP
    enterprise-managed authorization, SEP-990) this server accepts at its token endpoint.

    Disabling it, or changing its keys, stops new tokens at once: every assertion is checked against
    this row as it is now, and keys fetched from ``jwks_uri`` are cached under the row's last change.
    """

    class MatchBy(models.TextChoices):
        SUBJECT = "sub", "subject (sub): the IdP's stable id for the person, linked to an account here"
        EMAIL = "email", "email: an account here with the same address (only for an IdP trusted to verify it)"

    name = models.CharField(max_length=100, help_text="What operators and the audit trail call it, e.g. 'Acme Okta'")
    issuer = models.CharField(
        max_length=255, unique=True, help_text="The IdP's issuer, exactly as its assertions' iss claim has it"
    )
    jwks_uri = models.URLField(
        "JWKS URI", max_length=2000, blank=True, help_text="Where the IdP publishes its signing keys (https)"
    )
    jwks = models.JSONField(
        "signing keys (JWKS)", default=dict, blank=True, help_text="Or the IdP's public keys, pasted as a JWK Set"
    )
    clients = models.ManyToManyField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        blank=True,
        related_name="trusted_identity_providers",
        help_text="The clients that may present this IdP's assertions (each authenticates as itself too)",
    )
    match_by = models.CharField("match people by", max_length=8, choices=MatchBy.choices, default=MatchBy.SUBJECT)
    create_users = models.BooleanField(
        "create accounts for people not known here",
        default=False,
        help_text="Off: an assertion for someone with no account here is refused",
    )
    # OpenID Connect Core §5.1 / §5.7: an address is the person's only when the IdP verified it
    # (email_verified true) and the operator trusts the IdP's verification; off, its email claims are not used.
    trust_verified_email = models.BooleanField(
        "trust its verified email addresses",
        default=False,
        help_text="Ticked: an address it asserts it verified (email_verified true) may match an account here "
        "and is kept on accounts it creates. Unticked: its email claims are never used",
    )
    is_active = models.BooleanField("trusted", default=True, help_text="Untick to refuse its assertions at once")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "trusted identity provider"

    def __str__(self):
        return self.name

    def clean(self):
        from authserver.client_keys import key_source_problem

        problem = key_source_problem(jwks=self.jwks, jwks_uri=self.jwks_uri)
        if problem:
            raise ValidationError({"jwks": problem})
        if self.match_by == self.MatchBy.EMAIL and not self.trust_verified_email:
            # OpenID Connect Core §5.7: matching by address is only as good as the IdP's verification of it.
            raise ValidationError(
                {"trust_verified_email": "Matching people by email needs its verified email addresses trusted."}
            )
        if self.pk is not None and self.links.exists():
            stored = type(self).objects.filter(pk=self.pk).values_list("issuer", flat=True).first()
            if stored is not None and stored != self.issuer:
                # OpenID Connect Core §5.7 / RFC 7519 §4.1.2: a `sub` is unique only within its issuer. The
                # links made for this issuer's subjects would speak for whoever has those ids at another.
                raise ValidationError(
                    {
                        "issuer": "People are linked to this issuer's subjects; another issuer's subjects are other "
                        "people. Add a new identity provider for the new issuer (or delete these links first)."
                    }
                )


class IdentityLink(models.Model):
    """Who a trusted IdP's subject is here: made when a person is first matched or created.

    An email address never moves an account from one link to another: an account that any link
    speaks for is not matched by email again (``authserver.identity_links.identity_user``).
    """

    provider = models.ForeignKey(TrustedIdentityProvider, on_delete=models.CASCADE, related_name="links")
    # OpenID Connect Core §2: at most 255 ASCII characters, compared exactly; a longer one is refused, never cut.
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity_links")
    created_account = models.BooleanField(
        "created the account", default=False, help_text="This IdP's assertion created the account here"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "subject"], name="one_link_per_idp_subject")]

    def __str__(self):
        return f"{self.provider}: {self.subject} → {self.user}"


class AssertionAudience(models.Model):
    """The IdP side: another authorization server this server issues ID-JAGs for (RFC 8693 token
    exchange), for one of this server's clients, which is known there by ``remote_client_id``."""

    name = models.CharField(max_length=100, help_text="What people and operators call it, e.g. 'Acme wiki'")
    client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="assertion_audiences",
        help_text="This server's client that may ask for assertions for it",
    )
    audience = models.CharField(
        max_length=255, help_text="The other authorization server's issuer (the assertion's aud)"
    )
    resource = models.URLField(max_length=2000, help_text="The resource server (MCP URL) there")
    remote_client_id = models.CharField(
        "client ID there", max_length=255, help_text="The client's ID at that authorization server"
    )
    allowed_scope = models.TextField(
        "scopes it may carry", blank=True, help_text="Space-separated; empty: none (no ID-JAG is issued)"
    )
    is_active = models.BooleanField("active", default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "audience", "resource"], name="one_audience_per_client_resource")
        ]
        verbose_name = "assertion audience"

    def __str__(self):
        return f"{self.name} ({self.audience})"


class RedeemedCode(models.Model):
    """An authorization code that was exchanged for tokens, remembered by its SHA-256 so a second use
    is recognised and what the first one got is revoked (RFC 6749 §4.1.2). ``manage.py prune``
    forgets it once every token it could have led to has expired."""

    code_checksum = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name="client"
    )
    # The refresh token family the code started (DOT keeps it through every rotation).
    token_family = models.UUIDField(null=True, blank=True)
    redeemed = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "redeemed authorization code"

    def __str__(self):
        return f"Code redeemed {self.redeemed:%Y-%m-%d %H:%M:%S}"  # never the code, not even its hash


# django-oauth-toolkit's token tables (its stock models: this app swaps only the client model), as
# proxies here so the admin lists them with the clients, the consent grants and the audit trail in one
# section. The rows stay DOT's: no table or field is added.
class AccessTokenRecord(AccessToken):
    class Meta:
        proxy = True
        verbose_name = "access or registration token"


class RefreshTokenRecord(RefreshToken):
    class Meta:
        proxy = True
        verbose_name = "refresh token"


class GrantRecord(Grant):
    class Meta:
        proxy = True
        verbose_name = "pending authorization code"


class IDTokenRecord(IDToken):
    class Meta:
        proxy = True
        verbose_name = "ID token"


class UsedAssertion(models.Model):
    """A signed assertion whose ``jti`` was used (a client's ``private_key_jwt``, an IdP's ID-JAG),
    remembered by the SHA-256 of its signer and ``jti`` until it can no longer be accepted, so that no
    worker accepts it again (RFC 7523 §3 item 7, RFC 7519 §4.1.7). A table, not the cache: a cache may
    forget (cull, evict, restart) and a forgotten jti is a replay accepted (CWE-294). The unique
    ``digest`` makes the first insert the one use; ``manage.py prune`` forgets rows past ``expires``."""

    digest = models.CharField(max_length=64, unique=True)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "used assertion"

    def __str__(self):
        return f"Assertion used, remembered until {self.expires:%Y-%m-%d %H:%M:%S}"
