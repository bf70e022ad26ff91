"""Admin for operators: clients (how they registered, whose, trusted or not, in use or not), tokens
(who, which client, what for, until when, never the token itself), consent, and the audit trail."""

from datetime import timedelta

import django.contrib.auth.admin  # noqa: F401 - registers the user admin, which is extended below
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html
from oauth2_provider.admin import AccessTokenAdmin, ApplicationAdmin, GrantAdmin, IDTokenAdmin, RefreshTokenAdmin
from oauth2_provider.forms import ApplicationForm
from oauth2_provider.models import get_access_token_model, get_grant_model, get_id_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from authserver.accounts import user_sign_out_everywhere
from authserver.audit import audit_record
from authserver.clients import client_disable, client_prune, client_revoke_tokens
from authserver.consent import consent_revoke
from authserver.models import (
    AccessTokenRecord,
    Application,
    AssertionAudience,
    AuditEvent,
    ConsentGrant,
    GrantRecord,
    IdentityLink,
    IDTokenRecord,
    RefreshTokenRecord,
    TrustedIdentityProvider,
)
from authserver.revocation import live_access_tokens
from authserver.service_clients import service_user_create

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()
# OAuth 2.1 §10 drops the implicit and password grants; what an operator may still make a client for.
OAUTH_2_1_GRANT_TYPES = (Application.GRANT_AUTHORIZATION_CODE, Application.GRANT_CLIENT_CREDENTIALS)
IDLE_DAYS = 30  # the "idle" filter: no code or token for this long
# The form's word on allowed_scope (the model's help text, a migration away, says empty is any scope: true for a
# person's client, not for a service client, which then gets nothing).
SERVICE_SCOPES_HELP = (
    "Space-separated. A service client (client credentials) gets only these, without anyone consenting: "
    "it must list some. A client presenting an identity assertion gets at most these. Empty: whatever a "
    "person or an IdP grants; a client that only introspects gets no tokens for itself."
)


def _count(queryset):
    """A per-client count as a subquery, so counting two token tables does not multiply rows."""
    counted = queryset.filter(application=OuterRef("pk")).order_by().values("application")
    return Coalesce(Subquery(counted.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


class FirstPartyFilter(admin.SimpleListFilter):
    """DOT's ``skip_authorization``, named as the column and the actions name it."""

    title = "first-party"
    parameter_name = "first_party"

    def lookups(self, request, model_admin):
        return (("yes", "first-party (no consent page)"), ("no", "third-party (consent page)"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(skip_authorization=self.value() == "yes")
        return queryset


class UseFilter(admin.SimpleListFilter):
    title = "use"
    parameter_name = "use"

    def lookups(self, request, model_admin):
        return (
            ("never", "never used"),
            ("idle", f"idle (no use in {IDLE_DAYS} days)"),
            ("recent", f"used in the last {IDLE_DAYS} days"),
        )

    def queryset(self, request, queryset):
        idle_since = timezone.now() - timedelta(days=IDLE_DAYS)
        return {
            "never": queryset.filter(last_used__isnull=True),
            "idle": queryset.filter(last_used__lt=idle_since),
            "recent": queryset.filter(last_used__gte=idle_since),
        }.get(self.value(), queryset)


class CopiesFilter(admin.SimpleListFilter):
    """Agents that register on every connection leave copies: same name and redirect URIs."""

    title = "copies"
    parameter_name = "copies"

    def lookups(self, request, model_admin):
        return (("yes", "registered more than once (same name and redirect URIs)"),)

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        copies = (
            Application.objects.filter(name=OuterRef("name"), redirect_uris=OuterRef("redirect_uris"))
            .order_by()
            .values("name")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return queryset.annotate(copies=Subquery(copies, output_field=IntegerField())).filter(copies__gt=1)


class ClientForm(ApplicationForm):
    """DOT's client form, offering only OAuth 2.1's grant types, and no secret talk for a public client."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed_scope = self.fields.get("allowed_scope")
        if allowed_scope is not None:
            allowed_scope.help_text = SERVICE_SCOPES_HELP
        grant_types = self.fields.get("authorization_grant_type")
        if grant_types is not None:
            grant_types.choices = [choice for choice in grant_types.choices if choice[0] in OAUTH_2_1_GRANT_TYPES]
        algorithm = self.fields.get("algorithm")
        if algorithm is not None and self.instance.pk and self.instance.client_type == Application.CLIENT_PUBLIC:
            # HS256 signs ID tokens with the client secret, which a public client does not have; DOT's
            # widget carries warnings about that secret.
            algorithm.choices = [choice for choice in algorithm.choices if choice[0] != Application.HS256_ALGORITHM]
            algorithm.widget.attrs = {
                name: value
                for name, value in algorithm.widget.attrs.items()
                if not name.startswith(("data-hs256", "data-client-secret"))
            }


class ClientAdmin(ApplicationAdmin):
    # Readable at 1280 px: the client ID is in the search and on the client's page, not a column.
    list_display = (
        "display_name",
        "registration_source",
        "acts_as",
        "first_party",
        "is_active",
        "last_used",
        "active_tokens",
    )
    list_filter = (
        "registration_source",
        FirstPartyFilter,
        UseFilter,
        CopiesFilter,
        "is_active",
        "client_type",
        "may_introspect",
    )
    search_fields = ("name", "client_id", "user__username", "user__email")
    ordering = ("name", "-created")  # copies of one app side by side
    readonly_fields = (*ApplicationAdmin.readonly_fields, "created", "last_used", "client_metadata")
    actions = ["revoke_all_tokens", "mark_first_party", "mark_third_party", "disable", "prune"]
    form = ClientForm
    # DOT's Application.get_absolute_url names a view this site does not mount.
    view_on_site = False
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        if obj.is_service and obj.user_id is None and obj.allowed_scopes:
            # A service client acts as a dedicated service user, made for it (authserver.service_clients);
            # a client made only to introspect lists no scopes, gets no tokens, and needs none.
            obj.user = service_user_create(name=obj.name)
        super().save_model(request, obj, form, change)

    @admin.display(description="user (owner or service)", ordering="user__username")
    def acts_as(self, client):
        if client.user is None:
            return "—"
        if client.is_service:
            return f"{client.user.get_username()} (service)"
        return client.user.get_username()

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

    def get_exclude(self, request, obj=None):
        exclude = tuple(super().get_exclude(request, obj) or ())
        if obj is not None and obj.client_type == Application.CLIENT_PUBLIC:
            # RFC 6749 §2.1: a public client has no secret; its page does not speak of one (ClientForm
            # also drops HS256, which signs ID tokens with the secret).
            exclude += ("client_secret", "hash_client_secret", "token_endpoint_auth_method", "jwks", "jwks_uri")
        return exclude

    def get_deleted_objects(self, objs, request):
        # A client's tokens, codes and registration token go with it (DOT's token admins refuse a raw
        # delete of one token, which would orphan its refresh token; here the whole client goes). The
        # deletion is in the audit trail (authserver.signals.client_deleted).
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        credentials = {model._meta.verbose_name for model in (AccessToken, RefreshToken, Grant, IDToken)}
        return deleted, counts, perms_needed - credentials, protected

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

    @admin.action(
        description="Prune: delete the selected self-registered clients never used or idle, holding no live token"
    )
    def prune(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        pruned = client_prune(pks=selected)
        self.message_user(request, f"Pruned {pruned} of {len(selected)} selected client(s).", messages.SUCCESS)

    def _set_trust(self, request, queryset, *, first_party: bool):
        clients = list(queryset.exclude(skip_authorization=first_party))
        queryset.filter(pk__in=[client.pk for client in clients]).update(skip_authorization=first_party)
        for client in clients:
            audit_record(kind=AuditEvent.Kind.CLIENT_UPDATED, user=request.user, client=client, first_party=first_party)
        kind = "first-party" if first_party else "third-party"
        self.message_user(request, f"{len(clients)} client(s) are now {kind}.", messages.SUCCESS)


class TokenListMixin:
    """Who, which client, what for and until when; filters offer only users and clients that hold one.
    Read-only: tokens are issued by the flows and ended by revoking (the actions), not edited."""

    list_select_related = ("user", "application")
    list_filter = (("application", admin.RelatedOnlyFieldListFilter), ("user", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "created"

    def has_change_permission(self, request, obj=None):
        return False


class TokenKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return (("access", "access tokens"), ("registration", "registration tokens (RFC 7592)"))

    def queryset(self, request, queryset):
        registration = oauth2_settings.DCR_REGISTRATION_SCOPE
        return {
            "access": queryset.exclude(scope=registration),
            "registration": queryset.filter(scope=registration),
        }.get(self.value(), queryset)


class ClientAccessTokenAdmin(TokenListMixin, AccessTokenAdmin):
    # No token column at all: with COMPLIANT_BCP_RFC9700_TOKEN_STORAGE only its SHA-256 is stored.
    list_display = ("kind", "holder", "application", "scope", "resource", "expiry", "created")
    list_filter = (TokenKindFilter, *TokenListMixin.list_filter)
    exclude = ("token", "token_checksum")

    @staticmethod
    def _is_registration_token(token) -> bool:
        # DOT keeps each self-registered client's RFC 7592 management token in this table.
        return token.scope == oauth2_settings.DCR_REGISTRATION_SCOPE

    @admin.display(description="kind")
    def kind(self, token):
        return "registration token" if self._is_registration_token(token) else "access token"

    @admin.display(description="user", ordering="user")
    def holder(self, token):
        if token.user_id is None:
            return "the client itself" if self._is_registration_token(token) else "-"
        return token.user

    @admin.display(description="expires", ordering="expires")
    def expiry(self, token):
        return "never" if token.expires.year >= 9999 else token.expires


class ClientRefreshTokenAdmin(TokenListMixin, RefreshTokenAdmin):
    list_display = ("user", "application", "created", "revoked", "token_family")
    list_filter = (*TokenListMixin.list_filter, ("revoked", admin.EmptyFieldListFilter))
    exclude = ("token", "token_checksum")


class ClientGrantAdmin(TokenListMixin, GrantAdmin):
    list_display = ("user", "application", "scope", "resource", "expires", "created")
    exclude = ("code", "code_challenge")


class ClientIDTokenAdmin(TokenListMixin, IDTokenAdmin):
    list_display = ("user", "application", "expires", "created")


# DOT registered its own admins when oauth2_provider.admin was imported above; its token tables are
# listed here through proxies (authserver.models), beside the clients, as one "Authorization server".
admin.site.unregister(Application)
admin.site.register(Application, ClientAdmin)
for model, proxy, model_admin in (
    (AccessToken, AccessTokenRecord, ClientAccessTokenAdmin),
    (RefreshToken, RefreshTokenRecord, ClientRefreshTokenAdmin),
    (Grant, GrantRecord, ClientGrantAdmin),
    (IDToken, IDTokenRecord, ClientIDTokenAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(proxy, model_admin)


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


class IdentityLinkInline(admin.TabularInline):
    model = IdentityLink
    extra = 0
    readonly_fields = ("subject", "user", "created_account", "created")
    can_delete = True  # unlink: the person is matched (or refused) afresh on their next grant

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TrustedIdentityProvider)
class TrustedIdentityProviderAdmin(admin.ModelAdmin):
    """Companies' identity providers whose ID-JAGs are accepted (``authserver.identity_assertions``)."""

    list_display = ("name", "issuer", "match_by", "trust_verified_email", "create_users", "is_active", "updated")
    list_filter = ("is_active", "match_by", "trust_verified_email", "create_users")
    search_fields = ("name", "issuer")
    filter_horizontal = ("clients",)
    inlines = [IdentityLinkInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(AssertionAudience)
class AssertionAudienceAdmin(admin.ModelAdmin):
    """This server as an IdP: the other authorization servers it issues ID-JAGs for, per client."""

    list_display = ("name", "client", "audience", "resource", "remote_client_id", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "audience", "resource", "client__name")
    raw_id_fields = ("client",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


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
