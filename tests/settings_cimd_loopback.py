"""The project's settings, with one change for end-to-end tests of Client ID Metadata Documents:
the server fetches documents from a test's document server on loopback, and from loopback only.

An agent's website in a test is ``tests.authserver.document_server.DocumentServer``: HTTPS on
127.0.0.1, its certificate signed by a CA made for the test run. The server trusts that CA through
``SSL_CERT_FILE`` (the test sets it to the CA file; DOT's fetch reads it through
``ssl.create_default_context()``), and the fetcher below may connect to loopback addresses, which
production refuses (tests/authserver/test_metadata_document_fetch.py). Nothing else changes: the
project's fetcher, with its https-only, no-redirect, size and time limits, does the fetch.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import OAUTH2_PROVIDER

if not os.environ.get("SSL_CERT_FILE"):
    raise RuntimeError("tests.settings_cimd_loopback: set SSL_CERT_FILE to the document server's test CA")

OAUTH2_PROVIDER = {
    **OAUTH2_PROVIDER,
    "CIMD_METADATA_FETCHER": "tests.settings_cimd_loopback.loopback_metadata_document_fetcher",
}


def loopback_metadata_document_fetcher():
    """The project's fetcher, allowed to reach loopback addresses and nothing else.

    DOT looks up its module-level address check on every fetch, so replacing it here is enough; it
    is imported on first use, once the apps are loaded (DOT's ``cimd`` module imports its models).
    """
    import oauth2_provider.cimd

    from authserver.dot.metadata_documents import MetadataDocumentFetcher
    from tests.authserver.document_server import LOOPBACK_ADDRESSES

    oauth2_provider.cimd._ip_is_public = LOOPBACK_ADDRESSES.__contains__
    return MetadataDocumentFetcher()
