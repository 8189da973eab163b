"""The DuckDB store: table DDL, connections and the atomic partition writer.

Code that shares a connection with its caller reads every result with `fetchall()`, never
`fetchone()`: duckdb 2.0 keeps a half-read result open, and the caller's next `register` on
that connection is then refused. Other modules point here rather than repeat it.
"""
