"""The person's own pages: sign in, and the apps they connected."""

from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import ListView

from authserver.conf import site_name
from authserver.consent import connected_app_revoke, connected_apps
from authserver.display_text import display_text_clean
from authserver.models import Application, ConsentGrant
from authserver.scopes import scope_registry
from authserver.security import sensitive_page


@sensitive_page
class LoginView(auth_views.LoginView):
    """Django's login (CSRF, session key rotation, sensitive POST data), framed by nobody.
    Failed attempts are counted and locked out by django-axes (settings ``AXES_*``)."""

    template_name = "authserver/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["site_name"] = site_name(self.request)
        context.update(authorization_in_progress(self.get_redirect_url()))
        return context


def authorization_in_progress(next_url: str) -> dict:
    """When an app sent the person to sign in (``next`` is an authorization request): its name, and the
    URL that cancels the request back to it (``AuthorizationCancelView``)."""
    parts = urlsplit(next_url or "")
    if parts.path != reverse("oauth2_provider:authorize"):
        return {}
    client_id = parse_qs(parts.query).get("client_id", [""])[0]
    client = Application.objects.filter(client_id=client_id, is_active=True).only("name", "client_id").first()
    if client is None:
        return {}
    return {
        "app_name": display_text_clean(client.name or client.client_id),
        "cancel_url": reverse("oauth2_provider:authorize-cancel") + "?" + parts.query,
    }


@sensitive_page
class ConnectedAppsView(LoginRequiredMixin, ListView):
    """The apps the person allowed (copies of one app as one), what each may do and which tools it can call."""

    template_name = "authserver/connected_apps.html"
    context_object_name = "apps"

    def get_queryset(self):
        apps = connected_apps(user=self.request.user)
        for app in apps:
            app.scope_descriptions = [scope_registry[name].description for name in app.scopes]
        return apps


@sensitive_page
class RevokeConnectedAppView(LoginRequiredMixin, View):
    """Asks once more (GET), then revokes every registration of the app the person allowed (POST)."""

    http_method_names = ["get", "post"]

    def get(self, request, pk):
        grant = self._grant(request, pk)
        name = grant.application.name or grant.application.client_id
        return render(request, "authserver/connected_app_revoke.html", {"app_name": name})

    def post(self, request, pk):
        grant = self._grant(request, pk)
        connected_app_revoke(user=request.user, grant=grant)
        name = display_text_clean(grant.application.name or grant.application.client_id)
        messages.success(request, f"{name} can no longer access your account.")
        return redirect("authserver:connected-apps")

    @staticmethod
    def _grant(request, pk) -> ConsentGrant:
        return get_object_or_404(ConsentGrant.objects.select_related("application"), pk=pk, user=request.user)
