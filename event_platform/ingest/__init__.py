"""Ingestion stages of one file: land it, split it into lines, parse, validate, hash, store."""
