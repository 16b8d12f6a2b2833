"""Signed session cookies and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeSerializer

SESSION_COOKIE = "sexto_session"
PRESESSION_COOKIE = "sexto_presession"
LANGUAGE_COOKIE = "sexto_lang"
CSRF_FIELD = "csrf"


class Guard:
    """Seals session tokens into cookies and derives each session's CSRF token."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.cookies = URLSafeSerializer(secret, salt="sexto-dashboard-cookie")

    def seal(self, token: str) -> str:
        """A cookie value carrying a token, signed."""
        return self.cookies.dumps(token)

    def unseal(self, value: str | None) -> str | None:
        """The token in a cookie value, or None when it is missing or forged."""
        if not value:
            return None
        try:
            token = self.cookies.loads(value)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    @staticmethod
    def fresh() -> str:
        """A new random token (pre-session cookies)."""
        return secrets.token_urlsafe(24)

    def csrf(self, base: str) -> str:
        """The CSRF token for a session (or a pre-session) token."""
        return hmac.new(self.secret, f"csrf:{base}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, base: str | None, supplied: object) -> bool:
        """Whether a form carried the right CSRF token."""
        if not base or not isinstance(supplied, str):
            return False
        return hmac.compare_digest(self.csrf(base), supplied)
