"""`python -m event_platform.http_probe URL`: a container health check without curl.

The image is a slim Python one with no curl or wget, so the compose health checks of the API and
the webserver call this instead. Exit 0 when URL answers 2xx within the timeout; otherwise one
line on stderr naming the cause, and exit 1.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def probe(url: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """None when `url` answers 2xx, else why not (one line)."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url!r}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            status = response.status
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{url} is unreachable: {reason}"
    return None if 200 <= status < 300 else f"{url} answered {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m event_platform.http_probe URL", file=sys.stderr)
        return 2
    failure = probe(args[0])
    if failure:
        print(f"unhealthy: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
