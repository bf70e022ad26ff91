"""Key pairs and signed JWTs for private_key_jwt and identity assertions (RFC 7523): shared by tests and benchmarks."""

import json
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALGORITHM_KEYS = {
    "RS256": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), jwt.algorithms.RSAAlgorithm),
    "ES256": (lambda: ec.generate_private_key(ec.SECP256R1()), jwt.algorithms.ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate, jwt.algorithms.OKPAlgorithm),
}


@dataclass
class KeyPair:
    alg: str
    private_key: object
    kid: str

    @classmethod
    def make(cls, alg: str = "RS256", kid: str | None = None) -> "KeyPair":
        generate, _ = ALGORITHM_KEYS[alg]
        return cls(alg=alg, private_key=generate(), kid=kid or uuid.uuid4().hex[:12])

    @property
    def public_jwk(self) -> dict:
        _, algorithm = ALGORITHM_KEYS[self.alg]
        return {**json.loads(algorithm.to_jwk(self.private_key.public_key())), "kid": self.kid, "use": "sig"}

    @property
    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    @property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict, *, headers: dict | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


def assertion_claims(*, iss: str, sub: str, aud: str, lifetime: int = 120, **extra) -> dict:
    now = int(time.time())
    return {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex, **extra}


def unsigned(claims: dict) -> str:
    """A JWT with ``alg: none`` (RFC 7519 §6): no signature at all."""
    return jwt.encode(claims, None, algorithm="none")


def hmac_signed_with(secret: bytes, claims: dict, kid: str) -> str:
    """A JWT "signed" with HS256 using ``secret`` (e.g. a public key's PEM: the key-confusion attack)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"
