"""Ingest: usage events recorded in chunks, from CDR files or from values.

One transaction per chunk; the unique event id makes a re-ingest count nothing
twice, so a run killed mid-way loses at most the chunk in flight and is resumed
by running it again. The columnar state of rated accounts is kept between
chunks in the state cache.
"""
