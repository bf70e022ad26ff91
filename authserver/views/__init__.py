from authserver.views.account import ConnectedAppsView, LoginView, RevokeConnectedAppView
from authserver.views.authorize import AuthorizationView
from authserver.views.endpoints import IntrospectTokenView, ServerMetadataView, UserInfoView
from authserver.views.registration import RegistrationManagementView, RegistrationView

__all__ = [
    "AuthorizationView",
    "ConnectedAppsView",
    "IntrospectTokenView",
    "LoginView",
    "RegistrationManagementView",
    "RegistrationView",
    "RevokeConnectedAppView",
    "ServerMetadataView",
    "UserInfoView",
]
