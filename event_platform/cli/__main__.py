"""`python -m event_platform.cli`, the same as the `event-platform` script."""

from event_platform.cli.main import main

raise SystemExit(main())
