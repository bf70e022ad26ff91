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
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import loader

logger = logging.getLogger("config.errors")

RETRY_AFTER_SECONDS = 5
# RFC 6749 §5.2's shape, with §4.1.2.1's name for "try again later".
UNAVAILABLE = {"error": "temporarily_unavailable", "error_description": "The service is briefly unavailable"}

# The database cannot be reached or is busy, as opposed to a query that is wrong (a bug: 500).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# What Django itself answers with 400, 403 or 404.
_DJANGO_ANSWERS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def is_json_endpoint(request: HttpRequest) -> bool:
    match = request.resolver_match
    if request.path.startswith("/.well-known/"):
        return True
    return match is not None and match.namespace == "oauth2_provider" and match.url_name != "authorize"


def error_response(request: HttpRequest, exception: BaseException | None, *, log: bool = True) -> HttpResponse | None:
    """The answer for ``exception`` raised while serving ``request``; None leaves it to Django (DEBUG pages)."""
    unavailable = isinstance(exception, DATABASE_UNAVAILABLE)
    if log and unavailable:
        logger.warning("Database unavailable answering %s %s: %s", request.method, request.path, exception)
    elif log:
        logger.error("Error answering %s %s", request.method, request.path, exc_info=exception)
    status = 503 if unavailable else 500
    if is_json_endpoint(request):
        failed = {"error": "server_error", "error_description": "The server could not answer this request"}
        response = JsonResponse(UNAVAILABLE if unavailable else failed, status=status)
    elif settings.DEBUG:
        return None
    else:
        response = HttpResponse(loader.render_to_string(f"{status}.html"), status=status)
    response["Cache-Control"] = "no-store"
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ErrorResponseMiddleware:
    """Answers a view's exception with :func:`error_response` (before Django's debug page would)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, _DJANGO_ANSWERS):
            return None
        return error_response(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: failures outside views (a middleware, saving the session), with DEBUG off.
    Django has logged the exception already."""
    return error_response(request, sys.exc_info()[1], log=False) or HttpResponse(status=500)
