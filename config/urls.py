from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from authserver.views import ConnectedAppsView, LoginView, RevokeConnectedAppView

handler500 = "config.errors.server_error"

urlpatterns = [
    path("", include("authserver.urls")),
    path("", include("mcpapp.urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/connected-apps/", ConnectedAppsView.as_view(), name="connected-apps"),
    path("accounts/connected-apps/<int:pk>/revoke/", RevokeConnectedAppView.as_view(), name="connected-app-revoke"),
    path("admin/", admin.site.urls),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
]
