"""Existing rows under the rules of 0005: every client's authentication method named, and codes
still pending (they live a minute) stored as their SHA-256, so they redeem as before."""

import hashlib

from django.conf import settings
from django.db import migrations


def auth_methods_name(apps, schema_editor):
    Application = apps.get_model("authserver", "Application")
    Application.objects.filter(client_type="public").update(token_endpoint_auth_method="none")
    # What DOT's registration answered every confidential client with (RFC 7591 §2's default).
    Application.objects.exclude(client_type="public").update(token_endpoint_auth_method="client_secret_basic")


def pending_codes_hash(apps, schema_editor):
    app_label, model_name = getattr(settings, "OAUTH2_PROVIDER_GRANT_MODEL", "oauth2_provider.Grant").split(".")
    Grant = apps.get_model(app_label, model_name)
    for grant in Grant.objects.only("pk", "code").iterator():
        if len(grant.code) != 64:  # not a SHA-256 hex digest yet
            digest = hashlib.sha256(grant.code.encode("utf-8")).hexdigest()
            Grant.objects.filter(pk=grant.pk).update(code=digest)


class Migration(migrations.Migration):
    dependencies = [
        ("authserver", "0005_security_review"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
    ]

    operations = [
        migrations.RunPython(auth_methods_name, migrations.RunPython.noop),
        migrations.RunPython(pending_codes_hash, migrations.RunPython.noop),
    ]
