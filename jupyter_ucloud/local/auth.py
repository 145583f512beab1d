"""Tokens as UCloud issues and checks them (reference section 2).

* Refresh tokens: 32 random bytes as hex, stored as SHA-256; ``POST /auth/refresh`` trades one
  for an access token, and so does ``POST /auth/refresh/web`` with the token as the
  ``refreshToken`` cookie and the session's CSRF token as ``X-CSRFToken`` (``refresh_web``).
* Access tokens: HS512 JWTs with UCloud's claims, signed with a secret kept in
  ``<data-dir>/secret`` (mode 0600), valid ``access_token_lifetime`` seconds (10 minutes).
* API tokens: ``uc<hex id>-<secret>``, used directly as bearer, stored as SHA-256.

Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import LocalConfig
from .store import Store

__all__ = ["Principal", "TokenAuthority", "write_private_file"]

ISSUER = "cloud.sdu.dk"
AUDIENCE = "all:write"
_API_TOKEN = re.compile(r"^uc([0-9a-f]{1,15})-([0-9A-Za-z]{16,128})$")


@dataclass(frozen=True)
class Principal:
    """Who a bearer token belongs to."""

    username: str
    via_api_token: bool = False


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600 from the start (atomically replaced)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


class TokenAuthority:
    """Issues and verifies refresh, access and API tokens for the embedded server."""

    def __init__(self, config: LocalConfig, store: Store, data_dir: Path) -> None:
        self._config = config
        self._store = store
        self._secret = self._load_or_create_secret(data_dir / "secret")

    @staticmethod
    def _load_or_create_secret(path: Path) -> bytes:
        if path.exists():
            value = path.read_text().strip()
            if len(value) >= 64:
                return value.encode("ascii")
        value = secrets.token_hex(64)
        write_private_file(path, value + "\n")
        return value.encode("ascii")

    # --- refresh tokens ------------------------------------------------------------------

    def ensure_refresh_token_file(self, path: Path, username: str) -> bool:
        """Make sure ``path`` holds a valid refresh token of ``username``; ``True`` if created."""
        if path.exists():
            token = path.read_text().strip()
            found = self._store.find_refresh_token(_sha256(token)) if token else None
            if found is not None and found[0] == username:
                path.chmod(0o600)
                return False
        token = self.create_refresh_token(username)
        write_private_file(path, token + "\n")
        return True

    def create_refresh_token(self, username: str) -> str:
        token = secrets.token_hex(32)
        self._store.add_refresh_token(_sha256(token), username, secrets.token_hex(16), _now_ms())
        return token

    def refresh(self, refresh_token: str) -> tuple[str, str] | None:
        """``(access_token, csrf_token)`` for a valid refresh token, else ``None``."""
        if not refresh_token or len(refresh_token) > 512:
            return None
        found = self._store.find_refresh_token(_sha256(refresh_token))
        if found is None:
            return None
        username, csrf, expires_at = found
        if expires_at is not None and expires_at < _now_ms():
            return None
        return self.issue_access_token(username), csrf

    def refresh_web(self, refresh_token: str, csrf_token: str) -> tuple[str, str] | None:
        """``refresh`` for the web client: also needs the refresh token's CSRF token. (UCloud
        also accepts an empty one; here it must match.)"""
        if not csrf_token or len(csrf_token) > 512:
            return None
        if not refresh_token or len(refresh_token) > 512:
            return None
        found = self._store.find_refresh_token(_sha256(refresh_token))
        if found is None or not hmac.compare_digest(found[1].encode(), csrf_token.encode()):
            return None
        return self.refresh(refresh_token)

    # --- access tokens -------------------------------------------------------------------

    def issue_access_token(self, username: str, lifetime: float | None = None) -> str:
        now = int(time.time())
        lifetime = self._config.access_token_lifetime if lifetime is None else lifetime
        claims = {
            "sub": username,
            "uid": 0,
            "iat": now,
            "exp": now + int(max(1, lifetime)),
            "aud": [AUDIENCE],
            "iss": ISSUER,
            "role": "USER",
            "firstNames": username,
            "lastName": "",
            "email": None,
            "orgId": None,
            "twoFactorAuthentication": False,
            "serviceLicenseAgreement": True,
            "principalType": "password",
            "publicSessionReference": secrets.token_hex(8),
            "extendedByChain": [],
            "membership": {
                project: "USER"
                for project, members in self._config.projects.items()
                if username in members
            },
            "groups": {},
            "providerProjects": {},
            "domain": "localhost",
        }
        return jwt.encode(claims, self._secret, algorithm="HS512")

    def verify_bearer(self, token: str) -> Principal | None:
        """The principal of an access or API token; ``None`` when missing, forged or expired."""
        if not token or len(token) > 8192:
            return None
        match = _API_TOKEN.match(token)
        if match is not None:
            return self._verify_api_token(token, int(match.group(1), 16))
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS512"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["iss", "iat", "exp", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or claims.get("role") not in ("USER", "ADMIN"):
            return None
        return Principal(subject)

    # --- API tokens ----------------------------------------------------------------------

    def create_api_token(self, owner: str, title: str = "", expires_at: int | None = None) -> str:
        """A new ``uc<hex id>-<secret>`` token for ``owner``; only its hash is stored."""
        token_id = self._store.add_api_token("", owner, title, _now_ms(), expires_at)
        token = f"uc{token_id:x}-{secrets.token_hex(24)}"
        self._store.set_api_token_hash(token_id, _sha256(token))
        return token

    def _verify_api_token(self, token: str, token_id: int) -> Principal | None:
        digest = _sha256(token)
        for configured in self._config.api_tokens:
            if configured.id == token_id and hmac.compare_digest(configured.sha256, digest):
                if configured.expires_at is not None and configured.expires_at < _now_ms():
                    return None
                return Principal(configured.owner, via_api_token=True)
        row = self._store.find_api_token(token_id)
        if row is None or not row.token_sha256:
            return None
        if not hmac.compare_digest(row.token_sha256, digest):
            return None
        if row.expires_at is not None and row.expires_at < _now_ms():
            return None
        return Principal(row.owner, via_api_token=True)
