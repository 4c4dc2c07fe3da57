"""The noisy-neighbour rebalancer: a pure planner (core.py) over the CPU steal the agents report,
and the loop that runs its plans through the normal live-migration path (docs/rebalancer.md)."""
