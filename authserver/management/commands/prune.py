"""Housekeeping to run on a schedule (e.g. hourly), safe while the server is serving."""

from datetime import datetime

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone
from oauth2_provider.models import clear_expired

from authserver.audit import audit_prune
from authserver.client_keys import used_assertions_prune
from authserver.clients import client_prune
from authserver.codes import redeemed_codes_prune
from authserver.conf import app_settings


def database_cache_prune(*, now: datetime | None = None) -> int:
    """Delete the expired rows of every database cache in ``CACHES``; returns how many. Django deletes
    them only once a table holds ``MAX_ENTRIES`` rows, and counts the table on every write: pruned on
    schedule, the table holds the entries still in use, however high ``MAX_ENTRIES`` is set."""
    deleted = 0
    for alias, params in settings.CACHES.items():
        if not isinstance(caches[alias], DatabaseCache):
            continue
        connection = connections[router.db_for_write(caches[alias].cache_model_class)]
        table, expires = connection.ops.quote_name(params["LOCATION"]), connection.ops.quote_name("expires")
        moment = connection.ops.adapt_datetimefield_value(now or timezone.now())
        try:
            # The statement Django's own culling deletes expired rows with.
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE {expires} < %s", [moment])
                deleted += max(cursor.rowcount, 0)
        except DatabaseError:  # `migrate` (createcachetable) not run yet: nothing to prune
            continue
    return deleted


class Command(BaseCommand):
    @property
    def help(self):  # read when asked, so the site's AUTHSERVER values show
        return (
            "Delete expired tokens and codes, self-registered clients never used within "
            f"CLIENT_UNUSED_GRACE_HOURS ({app_settings.CLIENT_UNUSED_GRACE_HOURS}) or idle longer than "
            f"CLIENT_IDLE_RETENTION_DAYS ({app_settings.CLIENT_IDLE_RETENTION_DAYS}), and audit events older "
            f"than AUDIT_RETENTION_DAYS ({app_settings.AUDIT_RETENTION_DAYS}), and redeemed codes whose tokens "
            "all expired, used assertion IDs (jti) no longer acceptable, and expired database-cache rows."
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
        assertions = used_assertions_prune()
        cache_rows = database_cache_prune()
        self.stdout.write(
            f"Pruned {clients} unused client(s), {events} old audit event(s) and {codes} redeemed code(s) whose "
            f"tokens all expired, {assertions} used assertion(s) no longer acceptable and {cache_rows} expired "
            "cache row(s); expired tokens and codes cleared."
        )
