"""Response headers for the pages a person types a password into or grants access on."""

from functools import wraps

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny


def frame_ancestors_none(view):
    """CSP Level 2 §7.7 ``frame-ancestors 'none'``: no site may frame this page (clickjacking),
    the modern twin of ``X-Frame-Options: DENY`` which is set alongside it."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        return response

    return xframe_options_deny(wrapped)


# For class-based views: no caching, no framing.
sensitive_page = method_decorator([never_cache, frame_ancestors_none], name="dispatch")
