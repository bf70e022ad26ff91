from authserver.views.account import ConnectedAppsView, LoginView, RevokeConnectedAppView
from authserver.views.authorize import AuthorizationView
from authserver.views.endpoints import IntrospectTokenView, ServerMetadataView, UserInfoView

__all__ = [
    "AuthorizationView",
    "ConnectedAppsView",
    "IntrospectTokenView",
    "LoginView",
    "RevokeConnectedAppView",
    "ServerMetadataView",
    "UserInfoView",
]
