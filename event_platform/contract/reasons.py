"""Reason codes: a bounded class, and a detail that the sender may have written.

A reason is `class` or `class:detail` (see the contract table in README.md). The class is
written by our code; the detail may come from the input: `unexpected_field:<key>` and
`duplicate_field:<key>` carry a key of the line, which can be an email or a secret. The one
rule for showing a reason where personal data is masked (check metadata, logs, the API without
the `pii` scope) is `disclosed_reason`: a detail is shown only when it is one of the contract's
own field paths (then it names our field, not the sender's text); any other detail becomes
`***`, after the contract object it sits in, if any (`unexpected_field:data.***`). Metrics get
`reason_class` only, a fixed set of label values.
"""

from __future__ import annotations

from event_platform.contract.events import EVENTS_CONTRACT

# Every reason class ingestion writes: the structural parser's, the line reader's, the
# contract's value checks (pandera check names) and the dedup's. Any other is `other`.
REASON_CLASSES = frozenset(
    {
        "empty_line",
        "line_too_long",
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
CONTRACT_PATHS = EVENTS_CONTRACT.paths
# Objects a masked detail may be placed in, longest first (`data.` of `data.<key>`).
CONTRACT_OBJECTS = tuple(
    sorted((path for path in EVENTS_CONTRACT.object_paths if path), key=len, reverse=True)
)


def reason_class(reason: str) -> str:
    """`unexpected_field:a@b.org` -> `unexpected_field`; an unknown class -> `other`."""
    name = reason.split(":", 1)[0]
    return name if name in REASON_CLASSES else OTHER_REASON


def disclosed_reason(reason: str) -> str:
    """A reason as it may be shown where personal data is masked.

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
    """One line's reasons as shown where personal data is masked, each once, in stored order."""
    return list(dict.fromkeys(disclosed_reason(reason) for reason in reasons))
