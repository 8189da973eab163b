"""End to end: the CLI, servers, the Pub/Sub emulator and benchmarks as real processes."""
