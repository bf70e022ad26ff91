"""DOT endpoints whose answers this site corrects; every endpoint not here is DOT's own."""

import json

from django.http import JsonResponse
from oauth2_provider import views as dot_views


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


def json_error(error: str, description: str, status: int = 400) -> JsonResponse:
    """RFC 6749 §5.2's error body, the one shape every JSON endpoint here refuses with."""
    return JsonResponse({"error": error, "error_description": description}, status=status)


class IntrospectTokenView(dot_views.IntrospectTokenView):
    """RFC 7662 §2.3: an unauthenticated caller gets 401 with a JSON error (DOT: empty 403 page)."""

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if response.status_code == 403 and not response.content:
            response = json_error("invalid_client", "Introspection requires client authentication", status=401)
            response["WWW-Authenticate"] = 'Basic realm="introspection"'
        return response
