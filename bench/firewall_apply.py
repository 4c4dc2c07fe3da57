"""What one `firewall_sync` costs a compute host (kumo/agent/firewall_sync.py): the agent applies
its whole set of ports on every sync, so the cost grows with the ports on the host. At N ports
(each with Neutron's default group: egress any, ingress from the group's members, here `--members`
addresses, plus a tcp/22 rule) on this host's real iptables (nft backend):

  first     the first apply (every port's chains created)
  again     the same set applied again (what every later sync costs when one rule changed)
  remove    all N ports removed

The ports' taps do not exist (rules are keyed by tap name), so no traffic is involved; only this
run's ports are removed at the end (another process's kumo chains are left alone; the FORWARD
jump and kumo-fw go too when no other ports have rules).

    .venv/bin/python bench/firewall_apply.py --sizes 10 100 500 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.firewall.select import unusable_reason
from kumo.agent.network.spec import PortFirewall, Rule


def ports(n: int, members: int) -> list[PortFirewall]:
    group = tuple(f"10.{200 + i // 65536 % 50}.{i // 256 % 256}.{i % 256}" for i in range(members))
    rules = (
        Rule("egress"),
        Rule("ingress", remote_ips=group),
        Rule("ingress", protocol="6", port_range_min=22, port_range_max=22),
    )
    out = []
    for i in range(n):
        port_id = "zb" + uuid.uuid4().hex[:9] + "-" + uuid.uuid4().hex[:8]
        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in i.to_bytes(3, "big"))
        out.append(PortFirewall(port_id, mac, (f"10.99.{i // 250}.{i % 250 + 2}",), rules=rules))
    return out


def timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    reason = unusable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    fw = IptablesFirewall()
    rows = []
    for size in args.sizes:
        first, again, remove = [], [], []
        for _ in range(args.repeat):
            batch = ports(size, args.members)
            taps = [p.tap for p in batch]
            try:
                first.append(timed(lambda b=batch: fw.apply(b)))
                assert set(taps) <= fw.taps()
                again.append(timed(lambda b=batch: fw.apply(b)))
            finally:
                remove.append(timed(lambda t=taps: fw.remove(t)))
            assert not set(taps) & fw.taps()
        row = {
            "ports": size,
            "members": args.members,
            "first_s": round(statistics.median(first), 3),
            "again_s": round(statistics.median(again), 3),
            "remove_s": round(statistics.median(remove), 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not fw.taps():  # no one else's ports: leave no FORWARD jump nor kumo chain behind
        fw.teardown()
    print(f"{'ports':>6} {'first s':>8} {'again s':>8} {'remove s':>9}")
    for row in rows:
        print(f"{row['ports']:>6} {row['first_s']:>8} {row['again_s']:>8} {row['remove_s']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
