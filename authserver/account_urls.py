"""The person's pages: sign in and out, and the apps they connected. Include under any prefix:
``path("accounts/", include("authserver.account_urls"))`` (Django's default ``LOGIN_URL`` is
``/accounts/login/``; elsewhere, set ``LOGIN_URL = "authserver:login"``)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from authserver.views import ConnectedAppsView, LoginView, RevokeConnectedAppView

app_name = "authserver"

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("connected-apps/", ConnectedAppsView.as_view(), name="connected-apps"),
    path("connected-apps/<int:pk>/revoke/", RevokeConnectedAppView.as_view(), name="connected-app-revoke"),
]
