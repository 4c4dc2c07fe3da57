"""The agent's network data plane on one host (issue 17): what a network host realises for a
network (`spec.py`), and the library that converges the host onto it.

- `links.py`: the Linux bridge `brq…`, the namespace `qdhcp-<network>` and the veth between them
  holding the DHCP port's addresses, the gateway and 169.254.169.254/32 (`ip -batch`, one process
  per change set).
- `dnsmasq_conf.py` (pure) and `dnsmasq.py`: one dnsmasq per network in its namespace, static
  leases from a hosts directory, additions without a signal, removals with one SIGHUP and a
  `dhcp_release`; supervised (respawned) and adopted after the agent's own restart.
- `firewall/`: security groups on each port's tap behind the `Firewall` protocol.
- `host.py`: `NetworkHost.reconcile(spec)` converges all of it, idempotently.

Everything here is derived state: it can be thrown away and re-derived from a spec at any time.
"""
