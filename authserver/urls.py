"""django-oauth-toolkit's endpoints, mounted where OAuth clients look for them.

One URL namespace (``oauth2_provider``) holds both the origin-root discovery documents and the
endpoints under ``/o/``, because DOT derives the issuer by reversing these names: with them in one
place the RFC 8414 ``issuer``, the RFC 9207 ``iss`` and the OpenID ``issuer`` are the same string.
"""

from django.urls import path
from oauth2_provider import views as dot_views

from authserver.dot.views.endpoints import RevokeTokenView
from authserver.views import (
    AuthorizationCancelView,
    AuthorizationView,
    IntrospectTokenView,
    OpenIDDiscoveryView,
    RegistrationManagementView,
    RegistrationView,
    ServerMetadataView,
    TokenView,
    UserInfoView,
)

app_name = "oauth2_provider"

urlpatterns = [
    # RFC 8414 §3: metadata at the origin root (the issuer has no path).
    path(
        ".well-known/oauth-authorization-server",
        ServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/openid-configuration",
        OpenIDDiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(".well-known/jwks.json", dot_views.JwksInfoView.as_view(), name="jwks-info"),
    path("o/authorize/", AuthorizationView.as_view(), name="authorize"),
    path("o/authorize/cancel/", AuthorizationCancelView.as_view(), name="authorize-cancel"),
    path("o/token/", TokenView.as_view(), name="token"),
    path("o/revoke_token/", RevokeTokenView.as_view(), name="revoke-token"),
    path("o/introspect/", IntrospectTokenView.as_view(), name="introspect"),
    path("o/userinfo/", UserInfoView.as_view(), name="user-info"),
    path("o/register/", RegistrationView.as_view(), name="dcr-register"),
    path("o/register/<str:client_id>/", RegistrationManagementView.as_view(), name="dcr-register-management"),
]
