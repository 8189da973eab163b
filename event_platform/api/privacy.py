"""Masking of personal data for callers without the `pii` scope, and what Prometheus may see.

Masks keep just enough to eyeball a row (first character and domain of an email, first and last
two digits of a phone number) without allowing a lookup of the person.

Rejection reasons are `class` or `class:detail` (see the contract table in README.md). The class
is written by our code; the detail may be written by the sender: `unexpected_field:<key>` and
`duplicate_field:<key>` carry a key of the input line, which can be an email or a secret. The one
rule for showing a reason without the `pii` scope is `disclosed_reason`: the detail is shown only
when it is one of the contract's own field paths (then it names our field, not the sender's
text); any other detail becomes `***`, after the contract object it sits in, if any
(`unexpected_field:data.***`). Prometheus gets `reason_class` only, a fixed set of label values.
"""

from __future__ import annotations

from event_platform.contract import EVENTS_CONTRACT

# Every reason class the ingestion writes: the structural parser's, the contract's value checks
# (pandera check names) and the dedup's. A class outside this set is reported as `other`.
REASON_CLASSES = frozenset(
    {
        "empty_line",
        "malformed_json",
        "not_an_object",
        "missing_field",
        "unexpected_field",
        "duplicate_field",
        "wrong_type",
        "out_of_range",
        "invalid_format",
        "duplicate_event",
    }
)
OTHER_REASON = "other"
MASKED_DETAIL = "***"
CONTRACT_PATHS = frozenset(field.path for field in EVENTS_CONTRACT.fields)
# Objects a masked detail may be placed in, longest first (`data.` of `data.<key>`).
CONTRACT_OBJECTS = tuple(
    sorted((path for path in EVENTS_CONTRACT.object_paths if path), key=len, reverse=True)
)


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


def reason_class(reason: str) -> str:
    """`unexpected_field:a@b.org` -> `unexpected_field`; an unknown class -> `other`."""
    name = reason.split(":", 1)[0]
    return name if name in REASON_CLASSES else OTHER_REASON


def disclosed_reason(reason: str) -> str:
    """A reason as a caller without `pii` may see it.

    `missing_field:data.user_email` -> unchanged (a contract path);
    `unexpected_field:jane.roe@private.org` -> `unexpected_field:***`;
    `unexpected_field:data.victim@corp.com` -> `unexpected_field:data.***`.
    """
    name = reason_class(reason)
    _, colon, detail = reason.partition(":")
    if not colon:
        return name
    if detail in CONTRACT_PATHS:
        return f"{name}:{detail}"
    for parent in CONTRACT_OBJECTS:
        if detail.startswith(parent + "."):
            return f"{name}:{parent}.{MASKED_DETAIL}"
    return f"{name}:{MASKED_DETAIL}"


def disclosed_reasons(reasons: list[str]) -> list[str]:
    """One line's reasons as a caller without `pii` sees them, each once, in stored order."""
    return list(dict.fromkeys(disclosed_reason(reason) for reason in reasons))
