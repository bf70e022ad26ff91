"""The OAuth client model: django-oauth-toolkit's, swapped in at the start so policy can grow on it."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from oauth2_provider.models import AbstractApplication
from oauth2_provider.settings import oauth2_settings

from authserver.registration import redirect_uri_problem


class Application(AbstractApplication):
    # ID tokens are signed with the site's RSA key, so any client (registered ones included) can
    # ask for `openid`; DOT's default of no algorithm makes the token endpoint fail for them.
    algorithm = models.CharField(
        max_length=5,
        choices=AbstractApplication.ALGORITHM_TYPES,
        default=AbstractApplication.RS256_ALGORITHM,
        blank=True,
        verbose_name="algorithm",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "client"

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
        # The redirect URI policy (authserver.registration) holds however a client is made:
        # registration, a metadata document, the admin or `create_client`.
        problems = [problem for uri in self.redirect_uris.split() if (problem := redirect_uri_problem(uri))]
        if problems:
            raise ValidationError({"redirect_uris": problems})


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
