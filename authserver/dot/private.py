"""DOT's private functions this app calls, imported here only (see ``authserver.dot.PRIVATE_NAMES``)."""

from oauth2_provider.oauth2_backends import _add_iss_to_redirect as add_iss_to_redirect
from oauth2_provider.views.dynamic_client_registration import _issue_registration_token as issue_registration_token

__all__ = ["add_iss_to_redirect", "issue_registration_token"]
