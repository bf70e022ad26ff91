"""RFC 7591 registration and RFC 7592 management, held to this site's registration policy.

django-oauth-toolkit's views (3.4.1) register redirect URIs, a name, a grant type and a client
type, and answer with those: they echo every secret method as ``client_secret_basic``, turn a
public client confidential when an update leaves ``token_endpoint_auth_method`` out, take a body
of any content type and answer a secret without ``Cache-Control``. Here a request is parsed once
(``authserver.registration.client_metadata_parse``, which names the field of every refusal), the
client is made or updated from what was parsed, and the answer echoes everything registered
(RFC 7591 §3.2.1). DOT's views still decide whether registration is on (``DCR_ENABLED``), who
may register (``DCR_REGISTRATION_PERMISSION_CLASSES``), authenticate RFC 7592 requests and delete.

A JSON object naming a member twice is refused (RFC 8259 §4 leaves which one counts to each parser:
a filter reading the first and this server the last would disagree, CWE-436), at any depth.
Registrations, RFC 7592 updates and deletions (each a write, and an audit row) share one allowance
per address (``registration_rate_limit``, an IPv6 address counted by its /64), refused with the
token endpoint's 429 (CWE-770).
"""

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.urls import reverse
from oauth2_provider import views as dot_views
from oauth2_provider.settings import oauth2_settings

from authserver.audit import client_ip
from authserver.conf import app_settings
from authserver.dot.private import issue_registration_token
from authserver.dot.views.endpoints import JsonMethodNotAllowed
from authserver.errors import json_error
from authserver.hashers import client_secret_check
from authserver.models import Application
from authserver.ratelimit import address_counted, registration_rate_limit, too_many_requests
from authserver.registration import (
    GRANT_TYPES,
    RESPONSE_TYPES,
    ClientMetadata,
    ClientMetadataRefused,
    client_metadata_parse,
)

# RFC 7591 §3.2.1 / RFC 6749 §5.1: an answer carrying a secret or a registration access token is never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Application fields named as the RFC 7591 metadata they hold, for refusals from model validation.
FIELD_NAMES = {"name": "client_name"}


def no_store(response: JsonResponse) -> JsonResponse:
    for header, value in NO_STORE.items():
        response[header] = value
    return response


def registration_json(data: dict, status: int = 200) -> JsonResponse:
    return no_store(JsonResponse(data, status=status))


def refusal(error: str, description: str, status: int = 400) -> JsonResponse:
    return no_store(json_error(error, description, status=status))


class DuplicateMember(ValueError):
    """A JSON object that names one member twice."""


def members_unique(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads``'s ``object_pairs_hook``, for every object at any depth: RFC 8259 §4 says names
    SHOULD be unique and leaves a repeated one to each parser (CWE-436), so none is taken."""
    members: dict = {}
    for name, value in pairs:
        if name in members:
            raise DuplicateMember(name)
        members[name] = value
    return members


def request_metadata(request) -> dict:
    """The JSON object a registration request carries, or :class:`ClientMetadataRefused`."""
    # RFC 7591 §3.1: the metadata is sent as application/json (in UTF-8, RFC 8259 §8.1).
    charset = request.content_params.get("charset", "utf-8").lower()
    if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
        raise ClientMetadataRefused(
            "invalid_client_metadata", "Send the client metadata as application/json (RFC 7591 §3.1)", status=415
        )
    declared = request.META.get("CONTENT_LENGTH") or "0"
    limit = app_settings.REGISTRATION_MAX_BODY_BYTES
    if not declared.isdigit() or int(declared) > limit or len(request.body) > limit:
        raise ClientMetadataRefused("invalid_client_metadata", "The registration request is too large", status=413)
    try:
        data = json.loads(request.body.decode("utf-8"), object_pairs_hook=members_unique)
    except DuplicateMember as repeated:
        # RFC 7591 §3.2.2: metadata this server will not register.
        raise ClientMetadataRefused(
            "invalid_client_metadata",
            f"{json.dumps(str(repeated))[:100]}: named more than once in one JSON object (RFC 8259 §4)",
        ) from None
    except (ValueError, RecursionError):  # malformed, not UTF-8 (UnicodeDecodeError), or nested too deep
        raise ClientMetadataRefused("invalid_client_metadata", "The request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ClientMetadataRefused("invalid_client_metadata", "The request body must be a JSON object")
    return data


def client_metadata_apply(client: Application, metadata: ClientMetadata) -> None:
    """Set what ``metadata`` registers on ``client`` (not saved)."""
    client.name = metadata.client_name
    client.redirect_uris = " ".join(metadata.redirect_uris)
    client.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    client.token_endpoint_auth_method = metadata.token_endpoint_auth_method
    client.client_type = (
        Application.CLIENT_PUBLIC if metadata.token_endpoint_auth_method == "none" else Application.CLIENT_CONFIDENTIAL
    )
    client.client_metadata = metadata.descriptive


def client_validate(client: Application) -> None:
    """Model validation (the redirect URI and name policy, again), refused as client metadata."""
    try:
        client.full_clean(exclude=["client_secret"])  # generated here, never sent by the client
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        name = FIELD_NAMES.get(field, field)
        code = "invalid_redirect_uri" if name == "redirect_uris" else "invalid_client_metadata"
        raise ClientMetadataRefused(code, f"{name}: {' '.join(messages)}") from None


def registration_answer(client: Application, registration_token: str, request, *, secret: str | None = None) -> dict:
    """RFC 7591 §3.2.1: everything registered about the client, and how to manage it (RFC 7592 §3)."""
    answer = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created.timestamp()),
        "redirect_uris": client.redirect_uris.split(),
        "grant_types": list(GRANT_TYPES),
        "response_types": list(RESPONSE_TYPES),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        **({"client_name": client.name} if client.name else {}),
        **client.client_metadata,
        "registration_access_token": registration_token,
        "registration_client_uri": request.build_absolute_uri(
            reverse("oauth2_provider:dcr-register-management", kwargs={"client_id": client.client_id})
        ),
    }
    if client.client_type == client.CLIENT_CONFIDENTIAL:
        if secret is not None:  # only when issued: it is stored hashed
            answer["client_secret"] = secret
        answer["client_secret_expires_at"] = 0  # never
    return answer


def rate_limit_refusal(request) -> JsonResponse | None:
    """RFC 6585 §4: 429 with ``Retry-After`` when this address (an IPv6 one by its /64, RFC 6177)
    registered, updated or deleted registrations too often lately (CWE-770: each is a write)."""
    retry_after = registration_rate_limit().hit(address_counted(client_ip(request)))
    if retry_after is None:
        return None
    return too_many_requests(retry_after, "Too many registration requests from your address")


def registration_permitted(request) -> bool:
    """DOT's ``DCR_REGISTRATION_PERMISSION_CLASSES``, all of which must allow (none: nobody may)."""
    permissions = oauth2_settings.DCR_REGISTRATION_PERMISSION_CLASSES
    return bool(permissions) and all(permission().has_permission(request) for permission in permissions)


class RegistrationView(JsonMethodNotAllowed, dot_views.DynamicClientRegistrationView):
    def post(self, request, *args, **kwargs):
        # Every attempt counts, refused ones too, so probing the policy is rate-limited as well.
        limited = rate_limit_refusal(request)
        if limited:
            return limited
        if not registration_permitted(request):
            return refusal("access_denied", "Authentication required to register a client", status=401)
        user = request.user if request.user.is_authenticated else None
        client = Application(registration_source=Application.RegistrationSource.DCR, user=user)
        try:
            client_metadata_apply(client, client_metadata_parse(request_metadata(request)))
            client_validate(client)
        except ClientMetadataRefused as refused:
            return refusal(refused.error, refused.description, status=refused.status)
        secret = client.client_secret if client.client_type == client.CLIENT_CONFIDENTIAL else None  # before hashing
        with transaction.atomic():
            client.save()
            registration_token = issue_registration_token(client, user)
        return registration_json(registration_answer(client, registration_token, request, secret=secret), status=201)


class RegistrationManagementView(JsonMethodNotAllowed, dot_views.DynamicClientRegistrationManagementView):
    """RFC 7592: read, replace and delete a registration with its registration access token."""

    def get(self, request, client_id, *args, **kwargs):
        registration = self._authenticate_registration_request(request, client_id)
        if not hasattr(registration, "application"):  # DOT's refusal
            return registration
        return registration_json(registration_answer(registration.application, registration.presented_token, request))

    def put(self, request, client_id, *args, **kwargs):
        # RFC 7592 §2.2: each update is a write (and an audit row): counted as a registration (CWE-770).
        limited = rate_limit_refusal(request)
        if limited:
            return limited
        registration = self._authenticate_registration_request(request, client_id)
        if not hasattr(registration, "application"):
            return registration
        client = registration.application
        try:
            data = request_metadata(request)
            # RFC 7592 §2.2: the client names itself; a secret it sends must be the one it has.
            if data.get("client_id") not in (None, client.client_id):
                raise ClientMetadataRefused("invalid_client_metadata", "client_id: must be this client's client_id")
            secret = data.get("client_secret")
            if secret is not None and not (
                isinstance(secret, str) and client_secret_check(provided=secret, stored=client.client_secret)
            ):
                raise ClientMetadataRefused("invalid_client_metadata", "client_secret: does not match this client's")
            # RFC 7592 §2.2 replaces the whole registration, but a client's type changes only when it asks.
            metadata = client_metadata_parse(data, auth_method_default=client.token_endpoint_auth_method)
            if (metadata.token_endpoint_auth_method == "none") != (client.client_type == client.CLIENT_PUBLIC):
                raise ClientMetadataRefused(
                    "invalid_client_metadata",
                    "token_endpoint_auth_method: a client cannot change between public (none) and confidential; "
                    "register a new client instead",
                )
            client_metadata_apply(client, metadata)
            client_validate(client)
        except ClientMetadataRefused as refused:
            return refusal(refused.error, refused.description, status=refused.status)
        answer_token = registration.presented_token
        with transaction.atomic():
            client.save()
            if oauth2_settings.DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE:
                answer_token = issue_registration_token(client, client.user)
                registration.registration_token.delete()
        return registration_json(registration_answer(client, answer_token, request))

    def delete(self, request, client_id, *args, **kwargs):
        # RFC 7592 §2.3: a deletion is a write too, on the same allowance (CWE-770).
        limited = rate_limit_refusal(request)
        if limited:
            return limited
        return super().delete(request, client_id, *args, **kwargs)
