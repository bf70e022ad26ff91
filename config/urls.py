from django.contrib import admin
from django.urls import include, path

from config.views import HomeView

handler500 = "authserver.errors.server_error"

urlpatterns = [
    # The OAuth endpoints and discovery documents (at the origin root: /.well-known/..., /o/...).
    path("", include("authserver.urls")),
    # Sign-in, sign-out and connected apps.
    path("accounts/", include("authserver.account_urls")),
    # RFC 9728 metadata of the MCP endpoint (the endpoint itself is mounted in config/asgi.py).
    path("", include("mcpapp.urls")),
    path("admin/", admin.site.urls),
    path("", HomeView.as_view(), name="home"),
]
