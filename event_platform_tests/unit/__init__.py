"""Library tests: the domain code against real DuckDB files, in process."""
