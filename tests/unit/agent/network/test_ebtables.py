from __future__ import annotations

from kumo.agent.network.firewall.ebtables import port_lines, restore_text, teardown_text
from kumo.agent.network.spec import PortFirewall

PORT = PortFirewall("65c0ee9f-d6aa", "FA:16:3E:C9:CB:F0", ("10.0.1.5", "10.0.0.5"))


def test_port_chain_golden() -> None:
    # Source MAC first (before the bridge learns it), then ARP by sender MAC and IP, IPv4 to
    # iptables, RARP (QEMU's announce) with the port's MAC, every other ethertype dropped.
    assert port_lines(PORT) == [
        "-A kumo-m-65c0ee9f-d6 -s ! fa:16:3e:c9:cb:f0 -j DROP",
        "-A kumo-m-65c0ee9f-d6 -p ARP --arp-mac-src fa:16:3e:c9:cb:f0 --arp-ip-src 0.0.0.0 -j RETURN",
        "-A kumo-m-65c0ee9f-d6 -p ARP --arp-mac-src fa:16:3e:c9:cb:f0 --arp-ip-src 10.0.0.5 -j RETURN",
        "-A kumo-m-65c0ee9f-d6 -p ARP --arp-mac-src fa:16:3e:c9:cb:f0 --arp-ip-src 10.0.1.5 -j RETURN",
        "-A kumo-m-65c0ee9f-d6 -p ARP -j DROP",
        "-A kumo-m-65c0ee9f-d6 -p IPv4 -j RETURN",
        "-A kumo-m-65c0ee9f-d6 -p RARP -j RETURN",
        "-A kumo-m-65c0ee9f-d6 -j DROP",
    ]


def test_one_transaction_touches_only_named_ports() -> None:
    unsecured = PortFirewall("ccccccccccc", "fa:16:3e:00:00:01", (), port_security_enabled=False)
    lines = restore_text({"aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"}, [PORT, unsecured], {"bbbbbbbbbbb"})
    lines_set = set(lines.splitlines())
    assert lines.startswith("*nat\n:kumo-fw ACCEPT\n") and lines.endswith("COMMIT\n")
    assert "-A kumo-fw -i tapaaaaaaaaaaa -j kumo-m-aaaaaaaaaaa" in lines_set
    assert "-A kumo-fw -i tap65c0ee9f-d6 -j kumo-m-65c0ee9f-d6" in lines_set
    assert not any(line.startswith("-A kumo-m-aaaaaaaaaaa") for line in lines_set)  # kept as is
    assert {"-X kumo-m-bbbbbbbbbbb", "-X kumo-m-ccccccccccc"} <= lines_set
    assert not any("-i tapbbbbbbbbbbb" in line or "-i tapccccccccccc" in line for line in lines_set)


def test_teardown() -> None:
    saved = (
        "*nat\n:PREROUTING ACCEPT\n:kumo-fw ACCEPT\n:kumo-m-x RETURN\n:OTHER ACCEPT\n"
        "-A PREROUTING -j kumo-fw\n-A PREROUTING -j OTHER\n-A kumo-fw -i tapx -j kumo-m-x\n"
    )
    assert teardown_text(saved) == (
        "*nat\n-D PREROUTING -j kumo-fw\n:kumo-fw RETURN\n:kumo-m-x RETURN\n-X kumo-fw\n-X kumo-m-x\nCOMMIT\n"
    )
    assert teardown_text("*nat\n:PREROUTING ACCEPT\n-A PREROUTING -j OTHER\n") is None
