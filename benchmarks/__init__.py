"""The project's benchmarks: scripts, not tests, each run from the project root as a module.

    .venv/bin/python -m benchmarks.ingest_bench --help

Each benchmark module says what it measures and how to run it; the shared modules hold what
several need: `arguments` (option types), `bench_data` (cached generated files and their truth),
`child` (a measured run in a fresh process) and `servers` (real servers started and stopped).
The tests start some of the same servers, so they import `benchmarks.servers` too.
"""
