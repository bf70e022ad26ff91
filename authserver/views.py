"""django-oauth-toolkit's views where this site's policy differs; every other endpoint is DOT's own."""

import json

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
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
        if application is None:
            # DOT passes no client on error redirects and then allows only the global schemes,
            # which would turn an error for a loopback-http client into a 500. oauthlib redirects
            # only to a redirect URI it has matched against this client, so its schemes apply.
            client_id = self.request.GET.get("client_id") or self.request.POST.get("client_id")
            application = get_application_model().objects.filter(client_id=client_id).first()
        return super().redirect(_add_iss_to_redirect(redirect_to, issuer), application)

    def get(self, request, *args, **kwargs):
        if self._unknown_resources(request.GET.getlist("resource")):
            try:
                _scopes, credentials = self.validate_authorization_request(request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            return self._invalid_target(credentials["redirect_uri"], credentials.get("state"))
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        if self._unknown_resources((form.cleaned_data.get("resource") or "").split()):
            # The hidden fields came back from the browser: redirect only to a URI registered for
            # the client (RFC 9700 §4.1), else show the error here.
            client = get_application_model().objects.filter(client_id=form.cleaned_data["client_id"]).first()
            redirect_uri = form.cleaned_data["redirect_uri"]
            if client is None or not client.redirect_uri_allowed(redirect_uri):
                return self.render_to_response(
                    {"error": {"error": "invalid_request", "description": "Mismatching redirect URI."}}, status=400
                )
            return self._invalid_target(redirect_uri, form.cleaned_data.get("state"), client)
        return super().form_valid(form)

    def _unknown_resources(self, resources):
        """RFC 8707 §2: the resources named that this server issues no tokens for."""
        origin = self.request.build_absolute_uri("/")
        return [resource for resource in resources if not names_known_resource(resource, origin)]

    def _invalid_target(self, redirect_uri, state, application=None):
        error = OAuthToolkitError(
            error=CustomOAuth2Error(
                error="invalid_target",
                description="This server issues tokens only for its own MCP endpoints.",
                state=state,
            ),
            redirect_uri=redirect_uri,
        )
        return self.error_response(error, application)


class UserInfoView(dot_views.UserInfoView):
    """JSON endpoints answer JSON errors: DOT sends oauthlib's JSON refusal labelled text/html."""

    def _create_userinfo_response(self, request):
        response = super()._create_userinfo_response(request)
        if response.status_code >= 400:
            if not response.content:
                response.content = json.dumps({"error": "invalid_token", "error_description": "Access token required"})
            response["Content-Type"] = "application/json"
        return response


class ServerMetadataView(dot_views.OAuthServerMetadataView):
    """RFC 8414 §2: advertise what each endpoint accepts. DOT repeats the token endpoint's methods
    for introspection, but introspection needs an authenticated client, never ``none``."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        metadata = json.loads(response.content)
        if "introspection_endpoint" in metadata:
            metadata["introspection_endpoint_auth_methods_supported"] = [
                method for method in metadata["introspection_endpoint_auth_methods_supported"] if method != "none"
            ]
        response.content = json.dumps(metadata)
        return response


class IntrospectTokenView(dot_views.IntrospectTokenView):
    """RFC 7662 §2.3: an unauthenticated caller gets 401 with a JSON error (DOT: empty 403 page)."""

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if response.status_code == 403 and not response.content:
            response = JsonResponse(
                {"error": "invalid_client", "error_description": "Introspection requires client authentication"},
                status=401,
            )
            response["WWW-Authenticate"] = 'Basic realm="introspection"'
        return response
