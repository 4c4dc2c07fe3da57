"""The store seam: the one place that knows which database kumo runs on, past engine setup.

Domain code never asks which database it runs on. Where the databases differ (a statement
PostgreSQL runs in one round trip, an array parameter, SKIP LOCKED, an advisory lock, an
upsert's insert) it calls the `Store` of its session (`store_of(session)`, or
`database_store(db)` outside a transaction), whose methods have the same observable result on
every database (tests/functional/store/test_store_contract.py runs one suite against each).

Layers, lowest first, with no import cycle between files:

- `kumo.db` (engine, sessions) knows nothing of stores: a `Database` holds the store it was
  given, or the one its chooser (a hook registered by `kumo.store.choice`) picks for its
  database, once, on first use; each of its sessions carries the database (`session.info`).
- `kumo.placement.store_protocol`: the part of the protocol placement calls (`PlacementStore`)
  and its accessor. Placement sits below the stores (they carry out its rules), so it declares
  what it needs and never imports this package.
- `kumo.store.protocol`: the `Store` protocol (extending `PlacementStore`), the placement plan it
  commits, and the typed accessors. It imports models and pure rule modules only, so every
  domain module above placement may import it.
- `kumo.store.sqlite` and `kumo.store.postgresql`: one implementation per database (a new
  database is a new file), written against models and the rule modules; no domain module
  imports them.
- `kumo.store.choice`: picks the implementation for a database and registers itself as the
  chooser; the process start-up (`kumo.wiring`) imports it.

What to write (which rows, which values) is decided by domain code: a store carries out a
plan or a write it is given, and applies the rules of kumo.placement.allocation_rules where it
writes allocations; it decides nothing of its own.

This package's __init__ imports nothing, so importing `kumo.store.protocol` never loads an
implementation.
"""
