"""How client secrets are stored: a salted HMAC-SHA256, not a password hash.

django-oauth-toolkit hashes client secrets with ``CLIENT_SECRET_HASHER``, by default Django's
password hasher: PBKDF2 with 1,000,000 iterations (Django 5.2), about 0.3 s of CPU on every token
request of a confidential client, and as much for every wrong secret anyone sends. Stretching
exists to slow down guessing a secret a person chose. The secrets here are generated: DOT's
generator (admin, ``create_client``, RFC 7591 registration) draws 128 characters from 62 with
``SystemRandom``, about 760 bits, so a leaked hash cannot be searched however fast it is to
compute, and one iteration protects them as well as a million.

``ClientSecretHasher`` is Django's ``PBKDF2PasswordHasher`` with one iteration, which is one
HMAC-SHA256 keyed with the secret over a 128-bit random salt: Django's reviewed code for encoding,
decoding and a constant-time comparison, under an algorithm name of its own. Stored values read
``client_secret_pbkdf2_sha256$1$<salt>$<hash>``: what it is (PBKDF2-HMAC-SHA256, one iteration) and
what it is for. A salted SHA-256 ``BasePasswordHasher`` would be as safe, but it would be new code
to review for the same result.

- People's passwords keep Django's default (first in ``PASSWORD_HASHERS``): this hasher is only
  ever chosen by name, through ``OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"]``.
- It must stay listed in ``PASSWORD_HASHERS``: DOT recognises a stored hash by it, and would
  otherwise take the hash for a new plaintext secret and hash it again on the next save.
- Secrets stored earlier with PBKDF2 still verify; ``client_secret_check`` re-stores a confidential
  client's secret with this hasher the first time the client presents it correctly.
- Not for a secret a person made up: one typed in the admin (DOT's form allows it) gets no
  stretching either, so ``Application.clean`` refuses one shorter than 32 characters.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, identify_hasher, make_password
from django.utils.crypto import constant_time_compare
from oauth2_provider.settings import oauth2_settings


class ClientSecretHasher(PBKDF2PasswordHasher):
    """PBKDF2-HMAC-SHA256 with one iteration, for generated, high-entropy client secrets only."""

    algorithm = "client_secret_pbkdf2_sha256"
    iterations = 1


def client_secret_check(*, provided: str, stored: str) -> bool:
    """Whether ``provided`` is the secret ``stored`` holds (hashed, or plaintext for a client with
    ``hash_client_secret`` off), in constant time. A correct secret stored with another hasher than
    ``CLIENT_SECRET_HASHER`` (PBKDF2, before it was set) is stored again with it.

    An empty secret never matches: a public client has none (RFC 6749 §2.1), so "" is not its
    credential, and DOT's own check took ``"" == ""`` for a successful authentication."""
    if not provided or not stored:
        return False
    try:
        identify_hasher(stored)
    except ValueError:  # not a hash: DOT's plaintext secret
        return constant_time_compare(provided, stored)
    return check_password(
        provided,
        stored,
        setter=lambda secret: client_secret_rehash(stored=stored, secret=secret),
        preferred=oauth2_settings.CLIENT_SECRET_HASHER,
    )


def client_secret_rehash(*, stored: str, secret: str) -> int:
    """Store ``secret`` with ``CLIENT_SECRET_HASHER`` for the confidential client whose stored hash is
    ``stored``; returns how many rows changed (0: another worker or an operator changed it first).

    A compare-and-set on the old hash: of two workers upgrading at once the second matches nothing,
    and a secret an operator replaced in the meantime is left alone. Public clients are never touched
    (RFC 6749 §2.1: they have no secret to authenticate with).
    """
    # Imported here: Django imports this module to hash passwords, which must not need the models loaded.
    from oauth2_provider.models import get_application_model

    Application = get_application_model()
    confidential = Application.objects.filter(client_type=Application.CLIENT_CONFIDENTIAL, hash_client_secret=True)
    rehashed = make_password(secret, hasher=oauth2_settings.CLIENT_SECRET_HASHER)
    return confidential.filter(client_secret=stored).update(client_secret=rehashed)
