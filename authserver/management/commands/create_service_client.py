"""Create a service client: an automation that gets tokens with client credentials, as its service user."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from authserver.service_clients import service_client_create


class Command(BaseCommand):
    help = (
        "Create a service client (grant_type=client_credentials, no person, no consent). It authenticates with "
        "a secret (printed once) or, with --jwks-file / --jwks-uri, with private_key_jwt (no secret at all)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What operators and the audit trail call it, e.g. 'Nightly report'")
        parser.add_argument(
            "--scope", action="append", required=True, dest="scopes", help="A scope it may get (repeat for several)"
        )
        keys = parser.add_mutually_exclusive_group()
        keys.add_argument("--jwks-file", help="A file holding its public keys as a JWK Set (private_key_jwt)")
        keys.add_argument("--jwks-uri", default="", help="Where it publishes its public keys (https, private_key_jwt)")
        parser.add_argument(
            "--user", help="Act as this existing user (default: a new service user named after the client)"
        )

    def handle(self, *args, name, scopes, jwks_file, jwks_uri, user, **options):
        jwks = None
        if jwks_file:
            try:
                jwks = json.loads(Path(jwks_file).read_text())
            except (OSError, ValueError) as error:
                raise CommandError(f"--jwks-file: {error}") from None
        acting_user = None
        if user:
            user_model = get_user_model()
            acting_user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: user}).first()
            if acting_user is None:
                raise CommandError(f"No user {user!r}")
        try:
            client, secret = service_client_create(
                name=name, scopes=scopes, user=acting_user, jwks=jwks, jwks_uri=jwks_uri
            )
        except ValidationError as error:
            problems = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in problems.items())) from None
        self.stdout.write(f"client_id: {client.client_id}")
        if secret:
            self.stdout.write(f"client_secret: {secret}")
            self.stdout.write("The secret is shown only now: only its hash is stored.")
        else:
            self.stdout.write("Authenticates with private_key_jwt (RFC 7523): no secret exists.")
        self.stdout.write(
            f"Service client {name!r} created: acts as {client.user.get_username()!r}, may get {' '.join(scopes)}."
        )
