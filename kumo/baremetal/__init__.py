"""Baremetal: nodes (Ironic's API subset under /baremetal), conductors and their BMC drivers.

A node is a host to the scheduler (see docs/baremetal.md)."""
