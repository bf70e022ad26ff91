from django.conf import settings
from django.db import models

TITLE_MAX_LENGTH = 200
BODY_MAX_LENGTH = 20_000


class Note(models.Model):
    """A note of one person's. Only that person, and tools acting for them, ever see it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    body = models.TextField(blank=True, max_length=BODY_MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"], name="note_owner_newest")]

    def __str__(self):
        return self.title
