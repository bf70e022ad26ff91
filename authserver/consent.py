"""Consent: what a person allowed each client, remembered, and taken back.

Called from the authorization endpoint, the token glue, the connected-apps page and the admin alike.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from authserver.audit import audit_record
from authserver.capabilities import Capability, capabilities_unlocked, changing_capabilities_unseen
from authserver.clients import client_family_key
from authserver.models import Application, AuditEvent, ConsentGrant
from authserver.revocation import credentials_revoke
from authserver.scopes import scope_registry


def consent_grant(*, user, client: Application) -> ConsentGrant | None:
    return ConsentGrant.objects.filter(user=user, application=client).first()


def consent_new_tools(*, grant: ConsentGrant | None, scopes: Iterable[str]) -> list[Capability]:
    """Tools that can change data, unlocked by ``scopes``, added since the person last allowed this
    client: a remembered grant covers what the person was shown, not what a later deploy put under it."""
    if grant is None:
        return []  # a first consent shows every tool anyway
    return changing_capabilities_unseen(scopes=scopes, seen=grant.tools_seen)


@transaction.atomic
def consent_record(*, user, client: Application, scopes: Iterable[str]) -> ConsentGrant:
    """Remember that ``user`` allowed ``client`` these ``scopes`` (added to what it had), and the tools
    they unlock today (``consent_new_tools`` asks again when a deploy adds one that changes data)."""
    grant, _created = ConsentGrant.objects.select_for_update().get_or_create(
        user=user, application=client, defaults={"scope": ""}
    )
    merged = list(dict.fromkeys([*grant.scopes, *scopes]))
    seen = sorted({*grant.tools_seen, *(capability.name for capability in capabilities_unlocked(merged))})
    if merged != grant.scopes or seen != grant.tools_seen:
        grant.scope, grant.tools_seen = " ".join(merged), seen
        grant.save(update_fields=["scope", "tools_seen", "updated"])
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


@dataclass
class ConnectedApp:
    """One app on a person's "Connected apps" page: every registration of it they allowed, as one."""

    grants: list[ConsentGrant]  # newest first

    @property
    def pk(self) -> int:
        return self.grants[0].pk  # what the page's revoke form names; revoking takes every copy

    @property
    def name(self) -> str:
        client = self.grants[0].application
        return client.name or client.client_id

    @property
    def scopes(self) -> list[str]:
        granted = {name for grant in self.grants for name in grant.scopes}
        return [scope.name for scope in scope_registry if scope.name in granted]

    @property
    def created(self) -> datetime:
        return min(grant.created for grant in self.grants)

    @property
    def last_used(self) -> datetime | None:
        return max((grant.last_used for grant in self.grants if grant.last_used), default=None)

    @property
    def tools(self) -> list[Capability]:
        """What it can call today, with what the person allowed (a deploy may have added some)."""
        return capabilities_unlocked(self.scopes)


def connected_apps(*, user) -> list[ConnectedApp]:
    """The apps ``user`` allowed, copies of one app (``client_family_key``) grouped, newest first."""
    grants = ConsentGrant.objects.filter(user=user).select_related("application").order_by("-updated", "-pk")
    families: dict[tuple, ConnectedApp] = {}
    for grant in grants:
        families.setdefault(client_family_key(grant.application), ConnectedApp([])).grants.append(grant)
    return list(families.values())


def connected_app_revoke(*, user, grant: ConsentGrant) -> int:
    """Revoke ``grant``'s app for ``user``: every registration of it they allowed; returns how many."""
    app = next(app for app in connected_apps(user=user) if grant in app.grants)
    for copy in app.grants:
        consent_revoke(user=user, client=copy.application)
    return len(app.grants)
