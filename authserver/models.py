"""The OAuth client model: django-oauth-toolkit's, swapped in at the start so policy can grow on it."""

import ipaddress
from urllib.parse import urlsplit

from django.db import models
from oauth2_provider.models import AbstractApplication
from oauth2_provider.settings import oauth2_settings

LOOPBACK_HOSTNAMES = {"localhost"}


def is_loopback_host(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname.lower() in LOOPBACK_HOSTNAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


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

    def get_allowed_schemes(self):
        # RFC 9700 §2.1 / RFC 8252 §7.3: redirects are https, except that a native app may use plain
        # http to a loopback address. `http` is allowed only when every http redirect URI is one.
        schemes = list(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)
        http_uris = [uri for uri in self.redirect_uris.split() if uri.lower().startswith("http:")]
        if http_uris and all(is_loopback_host(urlsplit(uri).hostname) for uri in http_uris):
            schemes.append("http")
        return schemes
