"""Masking of personal data for callers without the `pii` scope.

Masks keep just enough to eyeball a row (first character and domain of an email, first and last
two digits of a phone number) without allowing a lookup of the person. Rejection reasons are
masked by `event_platform.contract.reasons.disclosed_reason`, the one rule for them.
"""

from __future__ import annotations


def mask_email(value: str | None) -> str | None:
    """`TAFgZ@gmail.com` -> `T***@gmail.com`."""
    if value is None:
        return None
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(value: str | None) -> str | None:
    """`0603728764` -> `06******64`."""
    if value is None:
        return None
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}{'*' * (len(value) - 4)}{value[-2:]}"
