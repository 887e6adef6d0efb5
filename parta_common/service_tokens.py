"""Service-to-service tokens: the media server asking the module about broadcasts.

HS256 JWTs signed with the same secret as media tokens, but for their own audience, so a
person's media token or viewer link can never be used as one.
"""

import time
from typing import Final

import jwt

from parta_common.tokens import ALGORITHM, ISSUER, LEEWAY, TokenError

AUD_SERVICE: Final = "parta-module-internal"
SERVICE_TOKEN_TTL: Final = 60


def sign_service_token(
    secret: str, service: str, ttl: int = SERVICE_TOKEN_TTL, now: float | None = None
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUD_SERVICE,
        "sub": service,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_service_token(token: str, secret: str) -> str:
    """The calling service's name; :class:`TokenError` when forged or expired."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUD_SERVICE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except jwt.PyJWTError as e:
        raise TokenError(str(e)) from None
    sub = payload["sub"]
    if not isinstance(sub, str) or not sub:
        raise TokenError("sub must be a non-empty string")
    return sub
