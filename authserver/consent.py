"""Consent: what a person allowed each client, remembered, and taken back.

Called from the authorization endpoint, the token glue, the connected-apps page and the admin alike.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from authserver.audit import audit_record
from authserver.models import Application, AuditEvent, ConsentGrant
from authserver.revocation import credentials_revoke
from authserver.scopes import scope_registry


def consent_scopes_granted(*, user, client: Application) -> set[str]:
    grant = ConsentGrant.objects.filter(user=user, application=client).only("scope").first()
    return set(grant.scopes) if grant else set()


def consent_missing_scopes(*, user, client: Application, scopes: Iterable[str]) -> list[str]:
    """The requested ``scopes`` the person has not allowed this client yet, in request order.

    A scope counts as allowed when a broader one that covers it was (allowing `notes` allowed `notes:read`).
    """
    return scope_registry.missing(granted=consent_scopes_granted(user=user, client=client), required=scopes)


@transaction.atomic
def consent_record(*, user, client: Application, scopes: Iterable[str]) -> ConsentGrant:
    """Remember that ``user`` allowed ``client`` these ``scopes`` (added to what it had)."""
    grant, _created = ConsentGrant.objects.select_for_update().get_or_create(
        user=user, application=client, defaults={"scope": ""}
    )
    merged = list(dict.fromkeys([*grant.scopes, *scopes]))
    if merged != grant.scopes:
        grant.scope = " ".join(merged)
        grant.save(update_fields=["scope", "updated"])
    return grant


def consent_touch(*, user_id: int, client_id: int, when: datetime) -> None:
    """Note that client ``client_id`` (pk) got a token for ``user_id`` (shown as "last used")."""
    ConsentGrant.objects.filter(user_id=user_id, application_id=client_id).update(last_used=when)


@transaction.atomic
def consent_revoke(*, user, client: Application) -> None:
    """Forget the grant and revoke every token and pending code ``client`` holds for ``user``.

    RFC 7009 §2.2: revoking a refresh token also invalidates the access tokens issued from it;
    here every access token of the pair goes, whatever its origin.
    """
    forgotten, _by_model = ConsentGrant.objects.filter(user=user, application=client).delete()
    credentials_revoke(user=user, application=client)
    if forgotten:
        audit_record(kind=AuditEvent.Kind.CONSENT_REVOKED, user=user, client=client)


def client_bind_owner(*, client: Application, user) -> bool:
    """Bind a dynamically registered client without an owner to the person who first authorizes it.

    A client that has an owner is never re-bound: the conditional update makes the first one win.
    Metadata-document clients are shared by everyone who uses that agent, so they stay unowned.
    """
    if client.user_id is not None or client.registration_source != Application.RegistrationSource.DCR:
        return False
    bound = Application.objects.filter(pk=client.pk, user__isnull=True).update(user=user)
    if bound:
        client.user = user
    return bool(bound)
