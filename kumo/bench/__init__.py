"""Benchmarks shipped with kumo (`kumo bench ...`): they drive a cloud through its public and
agent APIs only, and report figures as JSON."""
