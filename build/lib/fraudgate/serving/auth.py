"""The admin bearer token, checked in the core once for every transport.

One :class:`AdminAuth` per server, built from the config's ``auth:`` section and held by the data
plane whatever else is configured; REST passes the ``Authorization`` header and gRPC the
``authorization`` metadata (both ``Bearer <token>``). The token is compared in constant time
(`hmac.compare_digest`), and no message ever echoes what the caller sent.

Two checks, because the endpoints differ in what they risk when no token is configured:

* `AdminAuth.check` (``/feedback``, ``/admin``, inference with ``auth.inference``): open when no
  token is configured, as these endpoints always were (the start-up table says OPEN).
* `AdminAuth.require` (model management: load, reload, unload): secure by default, refused when
  no token is configured, since a load replaces what scores the traffic.
"""

from __future__ import annotations

import hmac

from fraudgate.config import AuthConfig
from fraudgate.protocol.errors import Forbidden, Unauthorized

NO_TOKEN_CONFIGURED = (
    "needs the admin bearer token, and none is configured: set auth.token or auth.token_env "
    "(an environment variable holding it) in the config"
)


class AdminAuth:
    """The configured bearer token (or none) and the checks against it."""

    def __init__(self, token: str | None) -> None:
        self._token_bytes = None if token is None else token.encode()

    @classmethod
    def from_config(cls, auth: AuthConfig) -> AdminAuth:
        return cls(auth.token)

    @property
    def configured(self) -> bool:
        return self._token_bytes is not None

    def check(self, authorization: str | None) -> None:
        """Raise Unauthorized unless ``authorization`` is ``Bearer <the configured token>``.

        Open (returns) when no token is configured.
        """
        if self._token_bytes is None:
            return
        if not authorization:
            raise Unauthorized(
                "Authorization: expected 'Bearer <token>' (the config's auth token), "
                "received nothing"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization: expected 'Bearer <token>', received another scheme")
        if not hmac.compare_digest(token.strip().encode(), self._token_bytes):
            raise Unauthorized("Authorization: the bearer token is not valid")

    def require(self, authorization: str | None, action: str) -> None:
        """Like `check`, but Forbidden when no token is configured (``action`` names the call)."""
        if self._token_bytes is None:
            raise Forbidden(f"{action} {NO_TOKEN_CONFIGURED}")
        self.check(authorization)
