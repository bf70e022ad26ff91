"""The person's own pages: sign in, and the apps they connected."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import ListView

from authserver.consent import consent_revoke
from authserver.display_text import display_text_clean
from authserver.models import ConsentGrant
from authserver.scopes import scope_registry
from authserver.security import sensitive_page


@sensitive_page
class LoginView(auth_views.LoginView):
    """Django's login (CSRF, session key rotation, sensitive POST data), framed by nobody.
    Failed attempts are counted and locked out by django-axes (settings ``AXES_*``)."""

    template_name = "authserver/login.html"


@sensitive_page
class ConnectedAppsView(LoginRequiredMixin, ListView):
    template_name = "authserver/connected_apps.html"
    context_object_name = "grants"

    def get_queryset(self):
        grants = ConsentGrant.objects.filter(user=self.request.user).select_related("application")
        grants = list(grants.order_by("-updated"))
        for grant in grants:
            grant.scope_descriptions = [
                scope_registry[name].description for name in grant.scopes if name in scope_registry
            ]
        return grants


@sensitive_page
class RevokeConnectedAppView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk):
        grant = get_object_or_404(ConsentGrant.objects.select_related("application"), pk=pk, user=request.user)
        consent_revoke(user=request.user, client=grant.application)
        name = display_text_clean(grant.application.name or grant.application.client_id)
        messages.success(request, f"{name} can no longer access your account.")
        return redirect("authserver:connected-apps")
