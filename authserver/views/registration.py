"""RFC 7591 registration and RFC 7592 management: DOT's views, behind this site's registration policy.

DOT stores whatever passes its model validation; here a request is first held to the policy in
``authserver.registration`` (redirect URIs, sizes, grant and response types), so a refused
registration answers a JSON error with RFC 7591's code and stores nothing.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from oauth2_provider import views as dot_views

from authserver.audit import client_ip
from authserver.ratelimit import registration_rate_limit
from authserver.registration import registration_problem
from authserver.views.endpoints import json_error


def metadata_refusal(request) -> JsonResponse | None:
    """The JSON error for a registration body this server will not take, or None to go on."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.REGISTRATION_MAX_BODY_BYTES
    if not declared.isdigit() or int(declared) > limit or len(request.body) > limit:
        return json_error("invalid_client_metadata", "The registration request is too large", status=413)
    try:
        data = json.loads(request.body)
    except ValueError:  # also UnicodeDecodeError
        return json_error("invalid_client_metadata", "The request body must be a JSON object")
    if not isinstance(data, dict):
        return json_error("invalid_client_metadata", "The request body must be a JSON object")
    problem = registration_problem(data)
    return json_error(*problem) if problem else None


class JsonMethodNotAllowed:
    """A JSON endpoint answers a wrong method with a JSON 405, not Django's empty one."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = super().http_method_not_allowed(request, *args, **kwargs)
        refusal = json_error("invalid_request", f"{request.method} is not allowed here", status=405)
        refusal["Allow"] = response["Allow"]
        return refusal


def rate_limit_refusal(request) -> JsonResponse | None:
    """RFC 6585 §4: 429 with ``Retry-After`` when this address registered too often lately."""
    retry_after = registration_rate_limit().hit(client_ip(request) or "unknown")
    if retry_after is None:
        return None
    refusal = json_error(
        "temporarily_unavailable",
        f"Too many registrations from your address; try again in {retry_after} seconds",
        status=429,
    )
    refusal["Retry-After"] = str(retry_after)
    return refusal


class RegistrationView(JsonMethodNotAllowed, dot_views.DynamicClientRegistrationView):
    def post(self, request, *args, **kwargs):
        # Every attempt counts, refused ones too, so probing the policy is rate-limited as well.
        return rate_limit_refusal(request) or metadata_refusal(request) or super().post(request, *args, **kwargs)


class RegistrationManagementView(JsonMethodNotAllowed, dot_views.DynamicClientRegistrationManagementView):
    def put(self, request, *args, **kwargs):
        # RFC 7592 §2.2: an update is a full replacement of the metadata, held to the same policy.
        return metadata_refusal(request) or super().put(request, *args, **kwargs)
