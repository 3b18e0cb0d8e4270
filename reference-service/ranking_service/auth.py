"""API key check for /rank and /feedback: `Authorization: Bearer <key>`, constant time.

Missing credentials answer 401 (with `WWW-Authenticate: Bearer`), a wrong key 403. The key is
compared with `hmac.compare_digest`, so response time does not leak how much of it matched,
and it is never logged. The bearer scheme is declared in the OpenAPI document.

/feedback uses the check as a FastAPI dependency. /rank calls `verify()` on the header itself:
its route skips FastAPI's dependency solving, which cost ~25 us a request (see rank_routes).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The brand's API key.")
# The OpenAPI security requirement of a route that calls `ApiKeyCheck.verify()` itself.
BEARER_SECURITY: list[dict[str, list[str]]] = [{_bearer.scheme_name: []}]


class ApiKeyCheck:
    """A FastAPI dependency bound to one brand's key."""

    def __init__(self, api_key: bytes) -> None:
        self._key = api_key

    # async: a sync dependency would cost a thread-pool hop on every request.
    async def __call__(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        self._check(None if credentials is None else credentials.credentials)

    def verify(self, authorization: str | None) -> None:
        """Check an `Authorization` header value as the dependency does; raise 401 or 403."""
        scheme, _, token = (authorization or "").partition(" ")
        self._check(token if scheme.lower() == "bearer" else None)

    def _check(self, token: str | None) -> None:
        if token is None or not token.strip():
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="missing API key: send the header 'Authorization: Bearer <brand API key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._key):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN, detail="invalid API key for this brand"
            )
