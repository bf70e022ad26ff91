"""Housekeeping to run on a schedule (e.g. hourly), safe while the server is serving."""

from django.core.management.base import BaseCommand, CommandError
from oauth2_provider.models import clear_expired

from authserver.audit import audit_prune
from authserver.clients import client_prune
from authserver.codes import redeemed_codes_prune
from authserver.conf import app_settings


class Command(BaseCommand):
    @property
    def help(self):  # read when asked, so the site's AUTHSERVER values show
        return (
            "Delete expired tokens and codes, self-registered clients never used within "
            f"CLIENT_UNUSED_GRACE_HOURS ({app_settings.CLIENT_UNUSED_GRACE_HOURS}) or idle longer than "
            f"CLIENT_IDLE_RETENTION_DAYS ({app_settings.CLIENT_IDLE_RETENTION_DAYS}), and audit events older "
            f"than AUDIT_RETENTION_DAYS ({app_settings.AUDIT_RETENTION_DAYS}), and redeemed codes whose tokens "
            "all expired."
        )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Clients deleted per transaction.")

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be a positive number.")
        # DOT's `cleartokens` first (expired tokens and codes), so a client whose last token just
        # expired is then free to go.
        clear_expired()
        clients = client_prune(batch_size=batch_size)
        events = audit_prune()
        codes = redeemed_codes_prune()
        self.stdout.write(
            f"Pruned {clients} unused client(s), {events} old audit event(s) and {codes} redeemed code(s) whose "
            "tokens all expired; expired tokens and codes cleared."
        )
