from django.contrib import admin

from notes.models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "created", "updated")
    list_filter = ("created",)
    search_fields = ("title", "body", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("created", "updated")
    date_hierarchy = "created"
