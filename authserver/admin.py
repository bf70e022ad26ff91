"""Admin for operators: clients (how they registered, whose, trusted or not, in use or not), tokens
(who, which client, what for, until when, never the token itself), consent, and the audit trail."""

import django.contrib.auth.admin  # noqa: F401 - registers the user admin, which is extended below
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html
from oauth2_provider.admin import AccessTokenAdmin, ApplicationAdmin, GrantAdmin, RefreshTokenAdmin
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver.accounts import user_sign_out_everywhere
from authserver.audit import audit_record
from authserver.clients import client_disable, client_revoke_tokens
from authserver.consent import consent_revoke
from authserver.models import Application, AuditEvent, ConsentGrant
from authserver.revocation import live_access_tokens

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


def _count(queryset):
    """A per-client count as a subquery, so counting two token tables does not multiply rows."""
    counted = queryset.filter(application=OuterRef("pk")).order_by().values("application")
    return Coalesce(Subquery(counted.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


class ClientAdmin(ApplicationAdmin):
    list_display = (
        "display_name",
        "client_id",
        "registration_source",
        "user",
        "first_party",
        "is_active",
        "created",
        "last_used",
        "active_tokens",
    )
    list_filter = ("registration_source", "skip_authorization", "is_active", "client_type", "may_introspect")
    search_fields = ("name", "client_id", "user__username", "user__email")
    readonly_fields = (*ApplicationAdmin.readonly_fields, "created", "last_used", "client_metadata")
    actions = ["revoke_all_tokens", "mark_first_party", "mark_third_party", "disable"]

    def get_queryset(self, request):
        now = timezone.now()
        # Live credentials: unexpired access tokens and refresh tokens not yet revoked.
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .annotate(
                live_access=_count(live_access_tokens(now=now)),
                live_refresh=_count(RefreshToken.objects.filter(revoked__isnull=True)),
            )
        )

    @admin.display(description="name", ordering="name")
    def display_name(self, client):
        # The name as the client supplied it, isolated: text direction inside cannot spill out.
        return format_html("<bdi>{}</bdi>", client.name)

    @admin.display(boolean=True, description="first-party", ordering="skip_authorization")
    def first_party(self, client):
        return client.is_first_party

    @admin.display(description="active tokens")
    def active_tokens(self, client):
        return client.live_access + client.live_refresh

    @admin.action(description="Revoke all tokens (everyone signs in to the client again)")
    def revoke_all_tokens(self, request, queryset):
        revoked = sum(client_revoke_tokens(client=client) for client in queryset)
        self.message_user(request, f"Revoked {revoked} live token(s) of {queryset.count()} client(s).")

    @admin.action(description="Mark as first-party (skip the consent page)")
    def mark_first_party(self, request, queryset):
        self._set_trust(request, queryset, first_party=True)

    @admin.action(description="Mark as third-party (always ask for consent)")
    def mark_third_party(self, request, queryset):
        self._set_trust(request, queryset, first_party=False)

    @admin.action(description="Disable (refuse its requests and revoke its tokens)")
    def disable(self, request, queryset):
        clients = list(queryset.filter(is_active=True))
        for client in clients:
            client_disable(client=client)
        self.message_user(request, f"Disabled {len(clients)} client(s).", messages.SUCCESS)

    def _set_trust(self, request, queryset, *, first_party: bool):
        clients = list(queryset.exclude(skip_authorization=first_party))
        queryset.filter(pk__in=[client.pk for client in clients]).update(skip_authorization=first_party)
        for client in clients:
            audit_record(kind=AuditEvent.Kind.CLIENT_UPDATED, user=request.user, client=client, first_party=first_party)
        kind = "first-party" if first_party else "third-party"
        self.message_user(request, f"{len(clients)} client(s) are now {kind}.", messages.SUCCESS)


class TokenListMixin:
    """Who, which client, what for and until when; filters offer only users and clients that hold one."""

    list_select_related = ("user", "application")
    list_filter = (("application", admin.RelatedOnlyFieldListFilter), ("user", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "created"


class ClientAccessTokenAdmin(TokenListMixin, AccessTokenAdmin):
    # No token column at all: with COMPLIANT_BCP_RFC9700_TOKEN_STORAGE only its SHA-256 is stored.
    list_display = ("user", "application", "scope", "resource", "expires", "created")
    exclude = ("token", "token_checksum")


class ClientRefreshTokenAdmin(TokenListMixin, RefreshTokenAdmin):
    list_display = ("user", "application", "created", "revoked", "token_family")
    list_filter = (*TokenListMixin.list_filter, ("revoked", admin.EmptyFieldListFilter))
    exclude = ("token", "token_checksum")


class ClientGrantAdmin(TokenListMixin, GrantAdmin):
    list_display = ("user", "application", "scope", "resource", "expires", "created")
    exclude = ("code", "code_challenge")


# DOT registered its own admins when oauth2_provider.admin was imported above.
for model, model_admin in (
    (Application, ClientAdmin),
    (AccessToken, ClientAccessTokenAdmin),
    (RefreshToken, ClientRefreshTokenAdmin),
    (Grant, ClientGrantAdmin),
):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(ConsentGrant)
class ConsentGrantAdmin(admin.ModelAdmin):
    list_display = ("user", "application", "scope", "created", "last_used")
    list_select_related = ("user", "application")
    search_fields = ("user__username", "application__name", "application__client_id")
    readonly_fields = ("user", "application", "scope", "created", "updated", "last_used")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # only a person's own consent creates one

    @admin.action(description="Revoke: forget the consent and revoke the client's tokens for the user")
    def revoke(self, request, queryset):
        grants = list(queryset.select_related("user", "application"))
        for grant in grants:
            consent_revoke(user=grant.user, client=grant.application)
        self.message_user(request, f"Revoked {len(grants)} consent grant(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: events are written by the product and removed only by retention (`manage.py prune`)."""

    list_display = ("time", "kind", "username", "display_client_name", "client_id", "ip", "detail")
    list_filter = ("kind",)
    search_fields = ("username", "client_id", "client_name", "ip")
    date_hierarchy = "time"

    @admin.display(description="client name", ordering="client_name")
    def display_client_name(self, event):
        return format_html("<bdi>{}</bdi>", event.client_name)  # as the client supplied it, isolated

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _user_admin_with_sign_out(user_admin_class):
    """The site's user admin, plus "Sign out everywhere" (``authserver.accounts``)."""

    class UserAdmin(user_admin_class):
        actions = [*(user_admin_class.actions or ()), "sign_out_everywhere"]

        @admin.action(description="Sign out everywhere (end their sessions and revoke every app's tokens)")
        def sign_out_everywhere(self, request, queryset):
            totals = [user_sign_out_everywhere(user=user, by=request.user) for user in queryset]
            sessions, tokens = sum(total[0] for total in totals), sum(total[1] for total in totals)
            self.message_user(
                request,
                f"Signed {len(totals)} user(s) out: {sessions} session(s) ended, {tokens} live token(s) revoked.",
                messages.SUCCESS,
            )

    return UserAdmin


User = get_user_model()
if admin.site.is_registered(User):
    _site_user_admin = type(admin.site.get_model_admin(User))
    admin.site.unregister(User)
    admin.site.register(User, _user_admin_with_sign_out(_site_user_admin))
