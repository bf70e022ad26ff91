"""What a request gets when answering it fails: never a stack trace, and JSON where JSON is spoken.

- The database away (a restart, a failover, SQLite locked past its busy timeout) is a 503 with
  ``Retry-After``: every request opens its connection afresh (or checks its pooled one), so service
  resumes by itself when the database is back.
- Anything else is a 500, logged with its traceback.

The JSON endpoints (discovery documents under ``/.well-known/``, and ``/o/`` except the
authorization page) answer ``{"error": ..., "error_description": ...}`` (RFC 6749 §5.2's shape;
``temporarily_unavailable`` is RFC 6749 §4.1.2.1's name for the 503 case); pages answer a
self-contained page that needs neither the database nor the session. With ``DEBUG`` on, pages
keep Django's debug page, JSON endpoints do not.

JSON endpoints answer JSON *always*: whatever Django itself answers with a page (a ``Host`` not in
``ALLOWED_HOSTS``, a CSRF failure, an unknown path, too many form fields, a 404 in ``DEBUG``) is
answered there as JSON with the same status and headers (``ErrorResponseMiddleware``, first in
``MIDDLEWARE`` for that reason).
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import loader
from django.urls import Resolver404, resolve

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# RFC 6749 §5.2's shape, with §4.1.2.1's name for "try again later".
UNAVAILABLE = {"error": "temporarily_unavailable", "error_description": "The service is briefly unavailable"}
SERVER_ERROR = {"error": "server_error", "error_description": "The server could not answer this request"}

# The database cannot be reached or is busy, as opposed to a query that is wrong (a bug: 500).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# What Django itself answers with 400, 403 or 404.
_DJANGO_ANSWERS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


# What a JSON endpoint says, per status, when Django would have answered with a page.
ERRORS_BY_STATUS = {
    400: ("invalid_request", "The request is malformed"),
    401: ("invalid_client", "Authentication is required"),
    403: ("access_denied", "This request is not allowed"),
    404: ("not_found", "There is nothing at this address"),
    405: ("invalid_request", "This method is not allowed here"),
    413: ("invalid_request", "The request is too large"),
}
# Headers of the page's answer that the JSON answer keeps (the rest describe the page).
_NOT_KEPT = {"content-type", "content-length"}


def is_json_endpoint(request: HttpRequest) -> bool:
    path = request.path_info
    if path.startswith("/.well-known/"):
        return True
    match = request.resolver_match
    if match is None:  # not routed yet (a middleware refused it), or no route
        try:
            match = resolve(path)
        except Resolver404:
            return path.startswith("/o/")
    return match.namespace == "oauth2_provider" and match.url_name != "authorize"


def json_error(error: str, description: str, status: int = 400) -> JsonResponse:
    """RFC 6749 §5.2's error body, the one shape every JSON endpoint here refuses with."""
    return JsonResponse({"error": error, "error_description": description}, status=status)


def json_instead_of_page(response: HttpResponse) -> JsonResponse:
    """The JSON error a JSON endpoint answers instead of ``response``, a page Django made."""
    error, description = ERRORS_BY_STATUS.get(response.status_code, ("server_error", "The request failed"))
    replacement = json_error(error, description, status=response.status_code)
    for header, value in response.items():
        if header.lower() not in _NOT_KEPT:
            replacement[header] = value
    return replacement


def _status_of(exception: BaseException) -> int:
    """The status Django answers one of its own exceptions with (413 for a body too large)."""
    for kind, status in ((Http404, 404), (PermissionDenied, 403), (RequestDataTooBig, 413)):
        if isinstance(exception, kind):
            return status
    return 400


def error_response(request: HttpRequest, exception: BaseException | None, *, log: bool = True) -> HttpResponse | None:
    """The answer for ``exception`` raised while serving ``request``; None leaves it to Django (DEBUG pages)."""
    unavailable = isinstance(exception, DATABASE_UNAVAILABLE)
    if log and unavailable:
        logger.warning("Database unavailable answering %s %s: %s", request.method, request.path, exception)
    elif log:
        logger.error("Error answering %s %s", request.method, request.path, exc_info=exception)
    status = 503 if unavailable else 500
    if is_json_endpoint(request) and unavailable:
        response = JsonResponse(UNAVAILABLE, status=status)
    elif is_json_endpoint(request):
        response = JsonResponse(SERVER_ERROR, status=status)
    elif settings.DEBUG:
        return None
    else:
        response = HttpResponse(loader.render_to_string([f"{status}.html", f"authserver/{status}.html"]), status=status)
    response["Cache-Control"] = "no-store"
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ErrorResponseMiddleware:
    """Answers a view's exception with :func:`error_response` (before Django's debug page would),
    and a page Django answered a JSON endpoint with as JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            if is_json_endpoint(request):
                return json_instead_of_page(response)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, _DJANGO_ANSWERS):
            if is_json_endpoint(request):
                return json_instead_of_page(HttpResponse(status=_status_of(exception)))
            return None
        return error_response(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: failures outside views (a middleware, saving the session), with DEBUG off.
    Django has logged the exception already."""
    return error_response(request, sys.exc_info()[1], log=False) or HttpResponse(status=500)
