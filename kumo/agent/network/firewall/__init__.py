"""Security groups on each port's tap: the `Firewall` protocol (`base.py`) and one driver per file."""
