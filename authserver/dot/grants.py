"""Two grant types django-oauth-toolkit 3.4.1 lacks, as oauthlib grant types added to the server
(``authserver.dot.server.OAuthServer``): the policy is ``authserver.identity_assertions``.

- :class:`IdentityAssertionGrant`: RFC 7523 §2.1 ``urn:ietf:params:oauth:grant-type:jwt-bearer``
  carrying an ID-JAG (MCP enterprise-managed authorization, SEP-990): an access token for the person
  a trusted IdP names, with no refresh token and no consent page.
- :class:`IdentityAssertionExchangeGrant`: RFC 8693 token exchange of an ID token this server issued
  for an ID-JAG to another authorization server an operator listed (this server as the IdP).

Both need an authenticated confidential client (RFC 6749 §3.2.1), with the method it registered.
"""

import json

from django.utils.functional import cached_property
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from authserver.audit import audit_record, audit_record_bounded
from authserver.client_keys import AssertionInvalid
from authserver.identity_assertions import (
    ID_JAG_LIFETIME_SECONDS,
    ID_JAG_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    ScopeRefused,
    TargetRefused,
    assertion_audience,
    id_jag_issue,
    id_token_subject,
    identity_assertion_accept,
)
from authserver.models import AuditEvent
from authserver.request_checks import resources_requested
from authserver.resources import known_resources


class InvalidTargetError(errors.OAuth2Error):
    """RFC 8707 §2 / RFC 8693 §2.2.2: the resource or audience asked for is not one to issue for
    (oauthlib 3.2 has no class for it)."""

    error = "invalid_target"
    status_code = 400


class _AuthenticatedClientGrant(GrantTypeBase):
    # RFC 6749 §3.2: parameters sent once. The token view refuses every repeated parameter first
    # (authserver.dot.repeated_parameters: DOT hands oauthlib only the last value of a repeated body
    # parameter, so oauthlib never sees most repeats); what still reaches a grant twice is a parameter
    # the RFCs let repeat (RFC 8707 `resource`) that this grant takes once.
    single_parameters: tuple[str, ...] = ("grant_type", "scope")

    def _client_authenticate(self, request) -> None:
        for name in self.single_parameters:
            if name in request.duplicate_params:
                raise errors.InvalidRequestError(description=f"Duplicate {name} parameter.", request=request)
        # RFC 6749 §3.2.1: a confidential client authenticates (a public one never does: `none`).
        if not self.request_validator.authenticate_client(request):
            raise errors.InvalidClientError(request=request)

    def _refuse(self, request, refusal: AssertionInvalid, *, error=errors.InvalidGrantError):
        # Any client that registered itself with a secret may send garbage assertions as often as it
        # likes: bounded writes (one row per reason and window, counting them).
        audit_record_bounded(
            kind=AuditEvent.Kind.ASSERTION_REFUSED,
            client=request.client,
            reason=refusal.reason,  # with what only operators may read (the answer says str(refusal))
            grant_type=request.grant_type,
        )
        raise error(description=str(refusal), request=request) from None

    def create_token_response(self, request, token_handler):
        # RFC 6749 §5.1 / RFC 8693 §2.2: JSON, never stored by a cache.
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
        try:
            body = self.token_issue(request, token_handler)
        except errors.OAuth2Error as error:
            headers.update(error.headers)
            return headers, error.json, error.status_code
        return headers, json.dumps(body), 200


class IdentityAssertionGrant(_AuthenticatedClientGrant):
    single_parameters = ("grant_type", "scope", "assertion")

    def token_issue(self, request, token_handler) -> dict:
        self._client_authenticate(request)
        if not getattr(request, "assertion", None):
            raise errors.InvalidRequestError(description="The assertion parameter is required.", request=request)
        issuer = oauth2_settings.oidc_issuer(request)
        scopes_backend = oauth2_settings.SCOPES_BACKEND_CLASS()
        try:
            grant = identity_assertion_accept(
                assertion=request.assertion,
                client=request.client,
                issuer=issuer,
                known_resources=known_resources(issuer),
                requested_resources=resources_requested(request),
                requested_scopes=request.scopes or [],
                available_scopes=scopes_backend.get_available_scopes(application=request.client),
            )
        except ScopeRefused as refusal:
            self._refuse(request, refusal, error=errors.InvalidScopeError)
        except AssertionInvalid as refusal:
            self._refuse(request, refusal)
        request.user = grant.user
        request.scopes = grant.scopes
        request.resource = grant.resources
        # SEP-990: no refresh token; the IdP decides again on each new grant.
        token = token_handler.create_token(request, refresh_token=False)
        self.request_validator.save_token(token, request)
        return token


class IdentityAssertionExchangeGrant(_AuthenticatedClientGrant):
    single_parameters = (
        "grant_type",
        "scope",
        "subject_token",
        "subject_token_type",
        "requested_token_type",
        "audience",
        "resource",
    )

    @cached_property
    def _signing_key(self):
        key = jwk_from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
        return key, key.thumbprint()

    def token_issue(self, request, token_handler) -> dict:
        self._client_authenticate(request)
        if not oauth2_settings.OIDC_RSA_PRIVATE_KEY:
            raise errors.UnsupportedGrantTypeError(request=request)
        # RFC 8693 §2.1: what to exchange, for what.
        if getattr(request, "requested_token_type", None) != ID_JAG_TOKEN_TYPE:
            raise errors.InvalidRequestError(
                description=f"requested_token_type must be {ID_JAG_TOKEN_TYPE}.", request=request
            )
        if getattr(request, "subject_token_type", None) != ID_TOKEN_TYPE or not getattr(request, "subject_token", None):
            raise errors.InvalidRequestError(
                description=f"subject_token must be an ID token (subject_token_type {ID_TOKEN_TYPE}).", request=request
            )
        audience = getattr(request, "audience", None)
        if not audience:
            raise errors.InvalidRequestError(description="The audience parameter is required.", request=request)
        issuer = oauth2_settings.oidc_issuer(request)
        key, key_id = self._signing_key
        try:
            subject = id_token_subject(
                id_token=request.subject_token,
                client=request.client,
                issuer=issuer,
                public_key=key.get_op_key("verify"),
            )
            target = assertion_audience(
                client=request.client, audience=audience, resource=getattr(request, "resource", None) or None
            )
            jag, scopes = id_jag_issue(
                user=subject.user,
                granted_scopes=subject.scopes,
                target=target,
                issuer=issuer,
                requested_scopes=request.scopes or [],
                signing_key=key.get_op_key("sign"),
                key_id=key_id,
            )
        except ScopeRefused as refusal:
            self._refuse(request, refusal, error=errors.InvalidScopeError)
        except TargetRefused as refusal:
            self._refuse(request, refusal, error=InvalidTargetError)
        except AssertionInvalid as refusal:
            self._refuse(request, refusal)
        audit_record(
            kind=AuditEvent.Kind.ASSERTION_ISSUED,
            user=subject.user,
            client=request.client,
            audience=target.audience,
            resource=target.resource,
            scope=" ".join(scopes),
        )
        # RFC 8693 §2.2.1: the issued token is `access_token`, its type says what it is; N_A: not a bearer token.
        return {
            "access_token": jag,
            "issued_token_type": ID_JAG_TOKEN_TYPE,
            "token_type": "N_A",
            "expires_in": ID_JAG_LIFETIME_SECONDS,
            "scope": " ".join(scopes),
        }
