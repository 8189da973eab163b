"""Reason codes: a bounded class, and a detail that may come from the input.

A reason is `class` or `class:detail` (`malformed_json`, `missing_field:data.user_email`,
`unexpected_field:<key>`). The detail of a field reason is a path: when it is one of the
contract's own paths it names the contract, not the data; any other path was written by
whoever wrote the line (an unexpected or repeated key), and may be an email address or a
secret. Such details are masked wherever personal data is (logs, check metadata, the API
without the `pii` scope), and metrics only ever see the class.
"""

from __future__ import annotations

from event_platform.contract.spec import StreamContract

MASKED_DETAIL = "<redacted>"


def reason_class(reason: str) -> str:
    """`unexpected_field:x.y` -> `unexpected_field`: a label with a small, fixed set of values."""
    return reason.split(":", 1)[0]


def mask_reason(reason: str, contract: StreamContract) -> str:
    """The reason with a detail that is not one of the contract's paths masked."""
    kind, colon, detail = reason.partition(":")
    if not colon or detail in contract.paths:
        return reason
    return f"{kind}:{MASKED_DETAIL}"
