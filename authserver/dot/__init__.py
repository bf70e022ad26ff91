"""The one boundary between this app and django-oauth-toolkit: every change to DOT's behaviour.

Checked against DOT 3.4.1 (``DOT_VERSION_CHECKED``); ``manage.py check`` warns outside
``DOT_VERSIONS_TESTED`` (``authserver.W001``). Each change names the RFC section or DOT issue it
answers where it is made. Public extension points first:

- ``validator`` (``OAUTH2_VALIDATOR_CLASS``): client authentication only with the registered method
  (RFC 6749 §2.3, RFC 7591 §2); every grant bound to a protected resource (RFC 8707 §2); codes stored
  hashed and used once, a replay revoking what they got (RFC 6749 §4.1.2); refresh reuse answered
  without deleting a concurrent winner's token (RFC 9700 §4.14.2); deactivated people refused
  (RFC 6750 §3.1); claims by scope (OpenID Connect Core §5.4). Policies live in ``authserver.grants``.
- ``validator``, also: ``private_key_jwt`` client authentication (RFC 7523 §2.2, DOT 3.4.1 has
  none; ``authserver.client_assertions``); ``client_credentials`` only for service clients an
  operator made, with the scopes listed for them, stored as their service user's (MCP
  client-credentials extension, RFC 6749 §3.3 / §4.4); no empty scope set, and a refresh narrowed to
  what the client may still get (RFC 6749 §6); oauthlib's ``prompt=none`` hooks
  (``validate_silent_login`` / ``validate_silent_authorization``), which DOT 3.4.1 leaves
  unimplemented (a 500), answered by the authorization view (OpenID Connect Core §3.1.2.6).
- ``repeated_parameters``: every OAuth parameter once (RFC 6749 §3.1 / §3.2), checked on the request
  as it arrived, since DOT hands oauthlib only the last value of a repeated body parameter; token,
  revocation and introspection parameters in the body only; userinfo's access token one way, never
  in the URL (RFC 6750 §2, RFC 9700 §4.3.2).
- ``server`` (``OAUTH2_SERVER_CLASS``): PKCE and request syntax checks (RFC 7636 §4.1-4.2) as
  oauthlib custom validators; RFC 8707 resources of client-credentials tokens; the grant types DOT
  lacks (``grants``): RFC 7523 jwt-bearer with an ID-JAG (SEP-990) and RFC 8693 token exchange
  issuing them.
- ``backend`` (``OAUTH2_BACKEND_CLASS``): absolute request URIs for the userinfo endpoint's RFC 8707
  audience check; "which client authenticated" for introspection (RFC 7662 §2.1).
- ``CIMD_REGISTRATION_PERMISSION_CLASSES`` (DOT's seam for who may register by metadata document):
  ``authserver.ratelimit.MetadataDocumentRegistrationLimit`` counts it as a registration per address.
- ``metadata_documents`` (``CIMD_METADATA_FETCHER``): the auth method a Client ID Metadata Document
  lists that this server supports; a document that only signs (``private_key_jwt`` with an https
  ``jwks_uri``) saved as such a client by a ``pre_save`` receiver (DOT 3.4.1 saves every one public).
- ``views``: DOT's view subclasses: authorization (consent, RFC 9207 ``iss`` on errors, RFC 8707
  resources, ``prompt=none`` answered ``login_required`` to a signed-out person and ``prompt=login``
  keeping the rest of the request, repeated parameters), token and revocation (repeated parameters,
  rate limits per address and client, RFC 6585 §4), registration (RFC 7591/7592 held to this site's
  policy), introspection (RFC 7662), userinfo (JSON errors), RFC 8414 metadata (``private_key_jwt``
  algorithms, the ID-JAG grant profile) and the token endpoint (an RFC 8693 exchange answers an
  ID-JAG, not a stored token).

Private DOT names are a last resort. Each one used is listed in ``PRIVATE_NAMES`` with the
signature it was checked with; ``tests/authserver/test_dot_boundary.py`` fails when DOT renames,
removes or re-signs one, so an upgrade cannot quietly switch a rule off.
"""

DOT_VERSION_CHECKED = "3.4.1"
# Versions the test suite ran with: [lowest, first untested).
DOT_VERSIONS_TESTED = ((3, 4, 1), (3, 5, 0))

# Every private name of DOT this app relies on, with the signature it was checked with (3.4.1).
PRIVATE_NAMES = {
    # Overridden: DOT's secret comparison, to rehash and to refuse an empty secret (views/validator).
    "oauth2_provider.oauth2_validators.OAuth2Validator._check_secret": "(self, provided_secret, stored_secret)",
    # Overridden: the one place every client lookup goes through (NUL in client_id, DOT #1006).
    "oauth2_provider.oauth2_validators.OAuth2Validator._load_application": "(self, client_id, request)",
    # Overridden: DOT's documented hook for custom logic inside the token transaction.
    "oauth2_provider.oauth2_validators.OAuth2Validator._save_bearer_token": "(self, token, request, *args, **kwargs)",
    # Overridden: the request DOT hands oauthlib (absolute URI for RFC 8707 checks at userinfo).
    "oauth2_provider.oauth2_backends.OAuthLibCore._extract_params": "(self, request)",
    # Called: RFC 9207 `iss` on error redirects too (replaces any `iss` present).
    "oauth2_provider.oauth2_backends._add_iss_to_redirect": "(uri, issuer)",
    # Called: RFC 7591 §3.2.1 registration access token, made as DOT's own registration makes it.
    "oauth2_provider.views.dynamic_client_registration._issue_registration_token": "(application, user)",
    # Called: RFC 7592 §3 registration-token authentication, DOT's own.
    "oauth2_provider.views.dynamic_client_registration.DynamicClientRegistrationManagementView"
    "._authenticate_registration_request": "(self, request, client_id)",
}
