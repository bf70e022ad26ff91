"""The database cache's table (settings.CACHES), made by `migrate` so no deployment step is forgotten."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # Does nothing for other cache backends, or when the table exists.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("authserver", "0003_client_last_used_active_audit")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
