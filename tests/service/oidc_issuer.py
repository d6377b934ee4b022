"""A small OpenID Connect issuer for the tests, on loopback: discovery, JWKS, and the authorization code flow.

Real keys (RSA 2048 and EC P-256, made here), a real JWKS over HTTP from a server thread. Its ``/authorize``
signs in ``subject`` at once (no login form) and redirects back with a one-time code; ``/token`` trades the
code for tokens after checking the PKCE verifier against the challenge, the client id and the redirect URI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class SigningKey:
    """A private key, its algorithm and its key id."""

    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algo = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk: dict[str, Any] = algo.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def make_key(kid: str, alg: str = "RS256") -> SigningKey:
    """A fresh key: RSA 2048 for RS256, P-256 for ES256."""
    private = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256"
               else ec.generate_private_key(ec.SECP256R1()))
    return SigningKey(kid, alg, private)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    """The running issuer: its address, its published keys, and counters of what it was asked."""

    url: str
    keys: list[SigningKey]
    subject: str = "alice"  # who /authorize signs in
    client_id: str = "soundgen-page"
    hits: dict[str, int] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def token(self, key: SigningKey | None = None, *, sub: str = "alice", aud: str | list[str] = "soundgen-api",
              iss: str | None = None, lifetime: float = 300, **claims: Any) -> str:
        """A token signed with ``key`` (default: the first), valid for ``lifetime`` seconds from now."""
        key = key or self.keys[0]
        now = int(time.time())
        body = {"iss": iss or self.url, "sub": sub, "aud": aud, "iat": now, "exp": now + int(lifetime), **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": self.url + "/jwks", "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token", "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"], "id_token_signing_alg_values_supported": ["RS256"]}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                         "Access-Control-Allow-Origin": "*", **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            url = urlparse(self.path)
            issuer.hits[url.path] = issuer.hits.get(url.path, 0) + 1
            realm = urlparse(issuer.url).path
            if url.path == realm + "/.well-known/openid-configuration":
                self._send(200, issuer.discovery())
            elif url.path == realm + "/jwks":
                self._send(200, {"keys": [k.public_jwk() for k in issuer.keys]})
            elif url.path == realm + "/authorize":
                self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            else:
                self._send(404, {"error": "not_found"})

        def _authorize(self, q: dict[str, str]) -> None:
            if (q.get("response_type") != "code" or q.get("client_id") != issuer.client_id
                    or q.get("code_challenge_method") != "S256" or not q.get("code_challenge")):
                self._send(400, {"error": "invalid_request", "got": q})
                return
            code = secrets.token_urlsafe(16)
            issuer.codes[code] = q
            back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
            self._send(302, None, {"Location": back})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            issuer.hits[url.path] = issuer.hits.get(url.path, 0) + 1
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            asked = issuer.codes.pop(form.get("code", ""), None)  # a code works once
            verifier = form.get("code_verifier", "")
            if (asked is None or form.get("grant_type") != "authorization_code"
                    or form.get("client_id") != asked["client_id"] or form.get("redirect_uri") != asked["redirect_uri"]
                    or b64url(hashlib.sha256(verifier.encode()).digest()) != asked["code_challenge"]):
                self._send(400, {"error": "invalid_grant"})
                return
            id_token = issuer.token(sub=issuer.subject, aud=issuer.client_id, nonce=asked.get("nonce"))
            self._send(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})

    return Handler


def start_issuer(keys: list[SigningKey], realm: str = "/realms/test") -> Issuer:
    """Serve an issuer at ``http://127.0.0.1:<free port><realm>`` in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    issuer = Issuer(f"http://127.0.0.1:{server.server_address[1]}{realm}", keys, server=server)
    server.RequestHandlerClass = _handler(issuer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return issuer
