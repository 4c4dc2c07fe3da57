"""The density test an operator runs before production (`kumo bench density`): a simulated
fleet over the real agent protocol and servers through the compute API, measured from outside
the cloud (its HTTP APIs, its /metrics pages, /proc) against the targets of a LINE-size fleet.
Developer benchmarks of kumo's internals live in the repository's top-level bench/, outside
the installed package."""
