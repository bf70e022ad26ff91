"""An agent's website for tests: an HTTPS server on 127.0.0.1 with a certificate from a throwaway CA."""

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_ADDRESSES = {"127.0.0.1", "::1"}
SERVER_SOCKET_TIMEOUT_SECONDS = 5
STALL_SECONDS = 10  # longer than the fetch timeout the stall test sets; cut short at teardown


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, subject_key, issuer, issuer_key, *, ca, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def throwaway_tls(folder):
    """A CA made for this test run, and a certificate it signed for localhost, 127.0.0.1 and ::1."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(_name("Throwaway test CA"), ca_key, _name("Throwaway test CA"), ca_key, ca=True)
    san = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    server_cert = _certificate(_name("localhost"), server_key, ca_cert.subject, ca_key, ca=False, san=san)
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    return {"ca_path": str(ca_path), "server_context": server_context}


class DocumentRequestHandler(BaseHTTPRequestHandler):
    timeout = SERVER_SOCKET_TIMEOUT_SECONDS  # every read and write on the server side is bounded

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()  # in this connection's thread, not the accept loop
        super().setup()

    def do_GET(self):
        server = self.server
        server.requested.append(self.path)
        response = server.responses.get(self.path, {"status": 404, "body": b"", "headers": {}})
        if response.get("stall"):
            server.released.wait(STALL_SECONDS)
        self.send_response(response["status"])
        for name, value in response["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response["body"])))
        self.end_headers()
        self.wfile.write(response["body"])

    def log_message(self, format, *args):
        pass


class DocumentServer(ThreadingHTTPServer):
    """An agent's website on 127.0.0.1 over HTTPS, serving whatever each test publishes."""

    daemon_threads = True

    def __init__(self, tls_context):
        super().__init__(("127.0.0.1", 0), DocumentRequestHandler)
        self.socket = tls_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server_address[1]
        self.responses: dict[str, dict] = {}
        self.requested: list[str] = []
        self.released = threading.Event()

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout, size cap) closes its end mid-answer; that is the point

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def answer(self, path, *, status=200, body=b"", headers=None, stall=False) -> str:
        self.responses[path] = {"status": status, "body": body, "headers": headers or {}, "stall": stall}
        return self.url(path)

    def publish(self, path, document, *, content_type="application/json", **answer) -> str:
        """Serve ``document`` at ``path``, its ``client_id`` that URL unless the document says otherwise."""
        body = json.dumps({"client_id": self.url(path), **document}).encode()
        return self.answer(path, body=body, headers={"Content-Type": content_type}, **answer)
