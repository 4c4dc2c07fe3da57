"""Hypervisor drivers. A driver is a handful of typed methods (kumo.agent.drivers.base);
a new one is a new module registered in the loader's DRIVERS (kumo.agent.drivers.load)."""
