from authserver.dot.views.authorize import AuthorizationCancelView, AuthorizationView
from authserver.dot.views.endpoints import (
    IntrospectTokenView,
    OpenIDDiscoveryView,
    ServerMetadataView,
    TokenView,
    UserInfoView,
)
from authserver.dot.views.registration import RegistrationManagementView, RegistrationView
from authserver.views.account import ConnectedAppsView, LoginView, RevokeConnectedAppView

__all__ = [
    "AuthorizationCancelView",
    "AuthorizationView",
    "ConnectedAppsView",
    "IntrospectTokenView",
    "LoginView",
    "OpenIDDiscoveryView",
    "RegistrationManagementView",
    "RegistrationView",
    "RevokeConnectedAppView",
    "ServerMetadataView",
    "TokenView",
    "UserInfoView",
]
