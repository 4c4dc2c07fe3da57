"""The Placement API (osc-placement compatible) over kumo's placement tables."""
