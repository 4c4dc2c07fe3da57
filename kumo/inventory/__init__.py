"""Declarative inventory (`kumo hosts apply inventory.yaml`): nodes, host labels and aggregates
kept in git and applied idempotently (LINE's git → CD → register flow)."""
