"""A client's life after registration: use, revocation, disabling, and pruning the unused ones.

Agents often register again on every reconnect, so most self-registered clients are used once or
never. ``client_prune`` removes those (after DOT's ``clear_expired`` removed the credentials that ran out),
so the client table stays proportional to the agents people actually use.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_grant_model, get_refresh_token_model

from authserver.audit import audit_record, client_deletions_recorded_as
from authserver.conf import app_settings
from authserver.models import Application, AuditEvent
from authserver.revocation import credentials_revoke, live_access_tokens

# "Last used" is written at most once a minute per client, so a busy client is not a hot row.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Only clients that registered themselves are pruned; an operator's clients stay until deleted.
PRUNABLE_SOURCES = (Application.RegistrationSource.DCR, Application.RegistrationSource.CIMD)


def client_family_key(client: Application) -> tuple:
    """What makes registrations copies of one app: the same name, redirect URIs and software id.

    Some agents register a new client on every connection; a person sees them as one app
    ("Connected apps" groups them) and ``client_prune`` removes the unused copies first.
    """
    software_id = (client.client_metadata or {}).get("software_id") or ""
    return (client.name, tuple(sorted(client.redirect_uris.split())), software_id)


def client_touch(*, client_pk: int, when: datetime) -> None:
    """Note that the client got a code or a token at ``when``."""
    Application.objects.filter(pk=client_pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lt=when - LAST_USED_RESOLUTION)
    ).update(last_used=when)


@transaction.atomic
def client_revoke_tokens(*, client: Application, now: datetime | None = None) -> int:
    """Revoke every token and pending code ``client`` holds, for everyone; returns how many were live."""
    live = credentials_revoke(application=client, now=now)
    audit_record(kind=AuditEvent.Kind.TOKEN_REVOKED, client=client, revoked="all tokens", live_tokens=live)
    return live


def client_disable(*, client: Application) -> None:
    """Stop ``client``: it can no longer authorize, get tokens or use the ones it had."""
    client.is_active = False
    client.save(update_fields=["is_active", "updated"])
    client_revoke_tokens(client=client)


def _prunable(now: datetime):
    """Self-registered, active, third-party clients never used within the grace period, or idle too long."""
    never_used_before = now - timedelta(hours=app_settings.CLIENT_UNUSED_GRACE_HOURS)
    idle_before = now - timedelta(days=app_settings.CLIENT_IDLE_RETENTION_DAYS)
    return Application.objects.filter(
        registration_source__in=PRUNABLE_SOURCES, is_active=True, skip_authorization=False
    ).filter(Q(last_used__isnull=True, created__lt=never_used_before) | Q(last_used__lt=idle_before))


def _holding_live_credentials(pks: set[int], now: datetime) -> set[int]:
    live: set[int] = set()
    for queryset, still_live in (
        (live_access_tokens(now=now), {}),
        (get_refresh_token_model().objects.all(), {"revoked__isnull": True}),
        (get_grant_model().objects.all(), {"expires__gt": now}),
    ):
        live.update(queryset.filter(application_id__in=pks, **still_live).values_list("application_id", flat=True))
    return live


def client_prune(*, now: datetime | None = None, batch_size: int = 500, pks: list[int] | None = None) -> int:
    """Delete prunable clients (of ``pks`` when given) that hold no live token or code; returns how
    many went. Never-used ones go first, so a run cut short has removed the unused copies.

    Safe while serving: each batch is re-checked under a row lock in its own transaction (on SQLite,
    ``transaction_mode="IMMEDIATE"`` serializes writers instead), so a client that gets a code or a
    token meanwhile is either seen as used or its insert waits and finds the client still there.
    """
    now = now or timezone.now()
    candidates = _prunable(now) if pks is None else _prunable(now).filter(pk__in=pks)
    deleted = 0
    for stage in (candidates.filter(last_used__isnull=True), candidates.filter(last_used__isnull=False)):
        last_pk = 0
        while True:
            batch = list(stage.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            last_pk = batch[-1]
            with transaction.atomic():
                locked = set(_prunable(now).select_for_update().filter(pk__in=batch).values_list("pk", flat=True))
                doomed = locked - _holding_live_credentials(locked, now)
                with client_deletions_recorded_as(AuditEvent.Kind.CLIENT_PRUNED):
                    for client in Application.objects.filter(pk__in=doomed):
                        client.delete()
                deleted += len(doomed)
    return deleted
