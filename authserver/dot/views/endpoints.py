"""DOT endpoints whose answers this site corrects; every endpoint not here is DOT's own."""

import json

from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.mixins import OAuthLibMixin

from authserver.client_assertions import PRIVATE_KEY_JWT
from authserver.client_keys import ALGORITHMS
from authserver.conf import JWT_BEARER_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE
from authserver.dot.repeated_parameters import (
    REPEATABLE,
    REPEATABLE_IN_TOKEN_EXCHANGE,
    access_token_transport_refusal,
    oauth_body_refusal,
)
from authserver.errors import json_error
from authserver.identity_assertions import ID_JAG_GRANT_PROFILE
from authserver.introspection import token_introspect
from authserver.ratelimit import token_issued_count, token_rate_limit_refusal


@method_decorator(csrf_exempt, name="dispatch")  # as DOT's own: bearer tokens, no cookies (lost by overriding dispatch)
class UserInfoView(dot_views.UserInfoView):
    """JSON endpoints answer JSON errors: DOT 3.4.1 sends oauthlib's JSON refusal labelled text/html
    (and an empty body when no token was sent). The access token comes one way, once, never in the
    URL (RFC 6750 §2, RFC 9700 §4.3.2: ``authserver.dot.repeated_parameters``)."""

    def dispatch(self, request, *args, **kwargs):
        refused = access_token_transport_refusal(request)
        if refused is not None:
            return refused
        response = super().dispatch(request, *args, **kwargs)
        json_answered = response.get("Content-Type", "").startswith("application/json")
        if request.method in ("GET", "POST") and response.status_code >= 400 and not json_answered:
            if not response.content:
                response.content = json.dumps({"error": "invalid_token", "error_description": "Access token required"})
            response["Content-Type"] = "application/json"
        return response


def signing_algorithms_name(metadata: dict, *endpoints: str) -> None:
    """RFC 8414 §2 / OpenID Connect Discovery §3: each endpoint taking ``private_key_jwt`` names the
    algorithms its assertions may be signed with."""
    for endpoint in endpoints:
        if PRIVATE_KEY_JWT in metadata.get(f"{endpoint}_auth_methods_supported", []):
            metadata[f"{endpoint}_auth_signing_alg_values_supported"] = list(ALGORITHMS)


class ServerMetadataView(dot_views.OAuthServerMetadataView):
    """RFC 8414 §2: advertise what each endpoint accepts. DOT repeats the token endpoint's methods
    for introspection, but introspection needs an authenticated client, never ``none``; it knows no
    ``private_key_jwt`` signing algorithms, and no grant profiles (SEP-990 / ext-auth §6:
    ``authorization_grant_profiles_supported`` names the ID-JAG profile of the jwt-bearer grant)."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        metadata = json.loads(response.content)
        if "introspection_endpoint" in metadata:
            metadata["introspection_endpoint_auth_methods_supported"] = [
                method for method in metadata["introspection_endpoint_auth_methods_supported"] if method != "none"
            ]
        signing_algorithms_name(metadata, "token_endpoint", "revocation_endpoint", "introspection_endpoint")
        if not oauth2_settings.OIDC_RSA_PRIVATE_KEY:
            # Token exchange issues ID-JAGs signed with the OpenID Connect key: none, no exchange.
            metadata["grant_types_supported"] = [
                grant for grant in metadata.get("grant_types_supported", []) if grant != TOKEN_EXCHANGE_GRANT_TYPE
            ]
        if JWT_BEARER_GRANT_TYPE in metadata.get("grant_types_supported", []):
            metadata["authorization_grant_profiles_supported"] = [ID_JAG_GRANT_PROFILE]
        response.content = json.dumps(metadata)
        return response


class TokenView(dot_views.TokenView):
    """DOT's token endpoint, behind this site's rate limits (``authserver.ratelimit``: RFC 6585 §4)
    and with each parameter once, in the body (``authserver.dot.repeated_parameters``: RFC 6749 §3.2).

    RFC 8693 §2.2.1: a token exchange answers with the ID-JAG in ``access_token``. DOT 3.4.1 looks
    every issued ``access_token`` up in its table (to send ``app_authorized``), which an ID-JAG is not
    in: a 500. The exchange is answered as oauthlib answers it; every other grant is DOT's."""

    def post(self, request, *args, **kwargs):
        limited = token_rate_limit_refusal(request)
        if limited is not None:
            return limited
        exchange = request.POST.getlist("grant_type") == [TOKEN_EXCHANGE_GRANT_TYPE]
        refused = oauth_body_refusal(request, allowed=REPEATABLE_IN_TOKEN_EXCHANGE if exchange else REPEATABLE)
        if refused is not None:
            return refused
        response = self.exchange_response(request) if exchange else super().post(request, *args, **kwargs)
        if response.status_code == 200:
            token_issued_count(request)
        return response

    def exchange_response(self, request) -> HttpResponse:
        several = [name for name in ("audience", "resource") if len(request.POST.getlist(name)) > 1]
        if several:
            # RFC 8693 §2.1 lets a client name several; an ID-JAG is for one authorization server (its
            # issuer is the `audience`) and at most one of its resources (draft-ietf-oauth-identity-
            # assertion-authz-grant), and DOT would pass on only the last one named: RFC 8693 §2.2.2
            # `invalid_target`, never a silent choice.
            return json_error("invalid_target", f"An ID-JAG is issued for one {several[0]}; several were named")
        _url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response


class OpenIDDiscoveryView(dot_views.ConnectDiscoveryInfoView):
    """OpenID Connect Discovery §3: with ``private_key_jwt`` among the token endpoint's methods, name the
    algorithms its assertions may use (DOT 3.4.1 names none, so a relying party would guess)."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        discovery = json.loads(response.content)
        signing_algorithms_name(discovery, "token_endpoint")
        response.content = json.dumps(discovery)
        return response


class JsonMethodNotAllowed:
    """A JSON endpoint answers a wrong method with a JSON 405, not Django's empty one."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = super().http_method_not_allowed(request, *args, **kwargs)
        refused = json_error("invalid_request", f"{request.method} is not allowed here", status=405)
        refused["Allow"] = response["Allow"]
        return refused


@method_decorator(csrf_exempt, name="dispatch")  # called by resource servers with client credentials, no cookies
class IntrospectTokenView(JsonMethodNotAllowed, OAuthLibMixin, View):
    """RFC 7662, for the resource servers an operator allows: DOT's view also answers GET (the token
    in the URL, where access logs keep it), lets any client that authenticates see any token (a
    public client "authenticated" with its empty secret), and lost its CSRF exemption in a subclass.

    - RFC 7662 §2.1: POST, form-encoded, each parameter once and none in the URL; any other method
      is a JSON 405.
    - RFC 7662 §2.1 / §4: the caller authenticates as a confidential client an operator marked
      ``may_introspect`` (Admin → Clients), with the method it registered; anyone else gets 401
      ``invalid_client`` (RFC 6749 §5.2), public clients included.
    - The answer (``authserver.introspection``) is never cached.
    """

    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        # RFC 7662 §2.1: form parameters in the body, each once (``authserver.dot.repeated_parameters``).
        refused = oauth_body_refusal(request)
        if refused is not None:
            return refused
        client = self.get_oauthlib_core().authenticated_client(request)
        if client is None or not client.may_introspect_tokens:
            refused = json_error(
                "invalid_client", "Introspection needs the credentials of a client allowed to introspect", status=401
            )
            refused["WWW-Authenticate"] = 'Basic realm="introspection"'
            return refused
        token = request.POST.get("token")
        if not token:
            return json_error("invalid_request", "The token parameter is required")
        answer = JsonResponse(token_introspect(token=token, issuer=oauth2_settings.oidc_issuer(request)))
        answer["Cache-Control"] = "no-store"
        return answer


@method_decorator(csrf_exempt, name="dispatch")  # as DOT's own: client credentials, no cookies
class RevokeTokenView(dot_views.RevokeTokenView):
    """RFC 7009: DOT's revocation, behind the per-address rate limit (``authserver.ratelimit``) and
    with each parameter once, in the body (RFC 7009 §2.1, ``authserver.dot.repeated_parameters``)."""

    def post(self, request, *args, **kwargs):
        limited = token_rate_limit_refusal(request, endpoint="revocation")
        if limited is not None:
            return limited
        refused = oauth_body_refusal(request)
        if refused is not None:
            return refused
        return super().post(request, *args, **kwargs)
