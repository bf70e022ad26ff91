"""OAuth parameters are sent once (RFC 6749 §3.1, §3.2; RFC 7009 §2.1 and RFC 7662 §2.1 build on
them): a request with two codes, two secrets or two tokens is refused, never answered for one of them.

django-oauth-toolkit 3.4.1 hands oauthlib only the last value of a body parameter sent twice
(``OAuthLibCore.extract_body`` keeps every ``resource`` and one of anything else), so oauthlib's own
duplicate checks never see a repeated body parameter. The views check the request as it arrived:

- every parameter, known here or not: the RFCs forbid repeating any, and a list of the names this
  server reads would let one read later slip through;
- but ``resource`` (RFC 8707 §2: one per resource), and ``audience`` in a token exchange (RFC 8693 §2.1);
- at the token, revocation and introspection endpoints parameters travel in the POST body (RFC 6749
  §3.2, RFC 7009 §2.1, RFC 7662 §2.1): one in the URL's query is refused, so ``?code=`` added to a
  body that has one is no second value. oauthlib refuses a query at the first two as well, but DOT
  answers that without a JSON content type; introspection here is not oauthlib's.

The refusal is RFC 6749 §5.2's ``invalid_request`` naming the parameter; the authorization endpoint
answers it as it answers its other errors (``authserver.dot.views.authorize``).

The userinfo endpoint is a protected resource (RFC 6750): its access token is sent one way, once, and
never in the URL (RFC 6750 §2, RFC 9700 §4.3.2). DOT 3.4.1 applies its
``COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT`` gate to ``verify_request`` only, so userinfo took a
token from the query string, and the header's token over a different one in the body.
"""

import re

from django.http import JsonResponse, QueryDict

from authserver.errors import json_error

# RFC 8707 §2: a client asks for several resources by repeating `resource`.
REPEATABLE = frozenset({"resource"})
# RFC 8693 §2.1: a token exchange may also name several audiences.
REPEATABLE_IN_TOKEN_EXCHANGE = REPEATABLE | {"audience"}
# A parameter name an error description may quote: RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E.
_QUOTABLE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def oauth_parameters_repeated(parameters: QueryDict, *, allowed: frozenset[str] = REPEATABLE) -> list[str]:
    """The names sent more than once in ``parameters`` that may be sent once only."""
    return [name for name, values in parameters.lists() if len(values) > 1 and name not in allowed]


def parameter_described(name: str) -> str:
    """ "The <name> parameter", where ``name`` may be quoted in an error description; else "A parameter"."""
    return f"The {name} parameter" if _QUOTABLE_NAME.fullmatch(name) else "A parameter"


def repeated_parameter_description(name: str) -> str:
    return f"{parameter_described(name)} must not be repeated"


def oauth_body_refusal(request, *, allowed: frozenset[str] = REPEATABLE) -> JsonResponse | None:
    """RFC 6749 §3.2: the JSON ``invalid_request`` for a POST to the token, revocation or
    introspection endpoint with parameters in its URL, or a repeated one in its body; else None."""
    if request.META.get("QUERY_STRING"):
        named = parameter_described(next(iter(request.GET), ""))
        return json_error("invalid_request", f"{named} must be sent in the request body, not in the URL")
    repeated = oauth_parameters_repeated(request.POST, allowed=allowed)
    if repeated:
        return json_error("invalid_request", repeated_parameter_description(repeated[0]))
    return None


def access_token_transport_refusal(request) -> JsonResponse | None:
    """RFC 6750 §3.1's ``invalid_request`` (400, with ``WWW-Authenticate``) for an access token in the
    URL (RFC 9700 §4.3.2), sent more than one way (RFC 6750 §2) or twice in the body; else None."""
    in_header = request.headers.get("Authorization", "").split(" ", 1)[0].lower() == "bearer"
    in_body = request.POST.getlist("access_token") if request.method == "POST" else []
    if "access_token" in request.GET:
        description = "The access token must not be sent in the URL"
    elif in_header and in_body:
        description = "The access token must be sent one way only"
    elif len(in_body) > 1:
        description = repeated_parameter_description("access_token")
    else:
        return None
    refused = json_error("invalid_request", description)
    refused["WWW-Authenticate"] = f'Bearer error="invalid_request", error_description="{description}"'
    return refused
