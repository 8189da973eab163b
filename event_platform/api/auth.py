"""API keys, their scopes, and the FastAPI dependencies that enforce them.

A key is sent as `X-API-Key` or as `Authorization: Bearer` (what Prometheus can send). Without
configured keys the API is open, which `ApiSettings.check_bind` allows on loopback only.
Emails and phone numbers are masked unless the key has the `pii` scope (routes read
`Principal.pii`). A key whose only scope is `metrics` may scrape `/metrics` and nothing else, so
the credential on the Prometheus server cannot read events.
"""

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from event_platform.api.errors import ApiError

METRICS_ONLY = frozenset({"metrics"})

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the scopes of the matched key (none when keys are not configured)."""

    scopes: frozenset[str]

    @property
    def pii(self) -> bool:
        return "pii" in self.scopes


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys, as bytes for a constant-time comparison; kept on `app.state`."""

    keys: tuple[tuple[bytes, frozenset[str]], ...]

    @classmethod
    def from_mapping(cls, keys: Mapping[str, frozenset[str]]) -> "ApiKeys":
        return cls(tuple((key.encode(), scopes) for key, scopes in keys.items()))

    def scopes_of(self, given: str) -> frozenset[str] | None:
        """The scopes of `given`, or None when it matches no key."""
        encoded = given.encode()
        matched: frozenset[str] | None = None
        for candidate, scopes in self.keys:  # compare against every key: no early exit to time
            if hmac.compare_digest(encoded, candidate):
                matched = scopes
        return matched


def authenticated(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)] = None,
    token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Principal | None:
    """The caller's scopes; None when no keys are configured (loopback only, all open)."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys.keys:
        return None
    given = key or (token.credentials if token is not None else None)
    if not given:
        raise ApiError(401, "unauthorized", "missing key: send X-API-Key or Authorization: Bearer")
    matched = keys.scopes_of(given)
    if matched is None:
        raise ApiError(401, "unauthorized", "invalid API key")
    return Principal(matched)


def data_reader(principal: Annotated[Principal | None, Depends(authenticated)]) -> Principal:
    """Any authenticated key but a metrics-only one; everyone when keys are not configured."""
    if principal is None:
        return Principal(frozenset())
    if principal.scopes == METRICS_ONLY:
        raise ApiError(403, "forbidden", "this key has only the metrics scope")
    return principal


def require_scope(scope: str, detail: str | None = None) -> Callable[[Principal | None], None]:
    """A dependency refusing (403) a key without `scope`; open when keys are not configured."""
    detail = detail or f"this needs a key with the {scope} scope"

    def dependency(principal: Annotated[Principal | None, Depends(authenticated)]) -> None:
        if principal is not None and scope not in principal.scopes:
            raise ApiError(403, "forbidden", detail)

    return dependency


# The principal of a route serving data: `caller.pii` decides masking.
Caller = Annotated[Principal, Depends(data_reader)]
