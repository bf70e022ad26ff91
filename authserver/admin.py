"""Admin for clients (DOT's, with trust and ownership shown) and the consent people gave them."""

from django.contrib import admin, messages
from oauth2_provider.admin import ApplicationAdmin

from authserver.consent import consent_revoke
from authserver.models import Application, ConsentGrant


class ClientAdmin(ApplicationAdmin):
    list_display = ("name", "client_id", "registration_source", "first_party", "user", "created")
    list_filter = ("registration_source", "skip_authorization", "client_type")
    search_fields = ("name", "client_id", "user__username")
    actions = ["mark_first_party", "mark_third_party"]

    @admin.display(boolean=True, description="first-party", ordering="skip_authorization")
    def first_party(self, client):
        return client.is_first_party

    @admin.action(description="Mark as first-party (skip the consent page)")
    def mark_first_party(self, request, queryset):
        count = queryset.update(skip_authorization=True)
        self.message_user(request, f"{count} client(s) are now first-party.", messages.SUCCESS)

    @admin.action(description="Mark as third-party (always ask for consent)")
    def mark_third_party(self, request, queryset):
        count = queryset.update(skip_authorization=False)
        self.message_user(request, f"{count} client(s) are now third-party.", messages.SUCCESS)


# DOT registered the client model with its own admin when oauth2_provider.admin was imported above.
admin.site.unregister(Application)
admin.site.register(Application, ClientAdmin)


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
