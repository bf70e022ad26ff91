"""Create an OAuth client from the command line, e.g. the site's own (first-party) apps."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from authserver.models import Application


class Command(BaseCommand):
    help = "Create an OAuth client (authorization code + PKCE). --first-party skips the consent page."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name people see, e.g. 'Official mail app'")
        parser.add_argument(
            "--redirect-uri",
            action="append",
            required=True,
            dest="redirect_uris",
            help="A redirect URI (repeat for several)",
        )
        parser.add_argument("--first-party", action="store_true", help="The site's own app: never ask for consent")
        parser.add_argument(
            "--confidential",
            action="store_true",
            help="A server-side app that can keep a secret (default: public, PKCE only)",
        )

    def handle(self, *args, name, redirect_uris, first_party, confidential, **options):
        client = Application(
            name=name,
            redirect_uris=" ".join(redirect_uris),
            client_type=Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            skip_authorization=first_party,
        )
        secret = client.client_secret if confidential else None  # shown once, stored hashed
        try:
            client.full_clean()
        except ValidationError as error:
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()))
        client.save()
        self.stdout.write(f"client_id: {client.client_id}")
        if secret:
            self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(f"{'first' if first_party else 'third'}-party client {name!r} created.")
