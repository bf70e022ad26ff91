"""The authorization endpoint: django-oauth-toolkit's view, with this site's template and two rules."""

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from mcpapp.resource import names_known_resource


@method_decorator([never_cache, xframe_options_deny], name="dispatch")
class AuthorizationView(dot_views.AuthorizationView):
    template_name = "authserver/authorize.html"

    def redirect(self, redirect_to, application):
        # RFC 9207 §2: *every* authorization response carries `iss`, errors included (DOT adds it to
        # successful responses only). `_add_iss_to_redirect` replaces any `iss` already present.
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        return super().redirect(_add_iss_to_redirect(redirect_to, issuer), application)

    def get(self, request, *args, **kwargs):
        refused = self._refuse_unknown_resources(request, request.GET.getlist("resource"))
        return refused or super().get(request, *args, **kwargs)

    def form_valid(self, form):
        resources = (form.cleaned_data.get("resource") or "").split()
        refused = self._refuse_unknown_resources(self.request, resources)
        return refused or super().form_valid(form)

    def _refuse_unknown_resources(self, request, resources):
        """RFC 8707 §2: answer `invalid_target` for a resource this server issues no tokens for."""
        origin = request.build_absolute_uri("/")
        unknown = [resource for resource in resources if not names_known_resource(resource, origin)]
        if not unknown:
            return None
        try:
            _scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        error = OAuthToolkitError(
            error=CustomOAuth2Error(
                error="invalid_target",
                description=f"This server issues no tokens for the resource {unknown[0]!r}.",
                state=credentials.get("state"),
            ),
            redirect_uri=credentials["redirect_uri"],
        )
        return self.error_response(error, application=None)
