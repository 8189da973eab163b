"""The DuckDB store: table DDL, connections and the atomic partition writer."""
