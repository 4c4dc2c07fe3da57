"""Peer tickets: bound to image, sender, receiver and expiry; forged or stale ones fail."""

from __future__ import annotations

from kumo.compute.precache import tickets

KEY = tickets.derive_key("agent-token")
IMG = "11111111-1111-4111-8111-111111111111"


def test_a_ticket_names_its_receiver_until_it_expires() -> None:
    ticket = tickets.mint(KEY, IMG, "sender", "receiver", expiry=1000)
    assert tickets.check(KEY, ticket, IMG, "sender", now=999) == "receiver"
    assert tickets.check(KEY, ticket, IMG, "sender", now=1001) is None  # expired


def test_a_ticket_is_good_for_one_image_one_sender_one_key() -> None:
    ticket = tickets.mint(KEY, IMG, "sender", "receiver", expiry=1000)
    assert tickets.check(KEY, ticket, "22222222-2222-4222-8222-222222222222", "sender", now=0) is None
    assert tickets.check(KEY, ticket, IMG, "other", now=0) is None
    assert tickets.check(tickets.derive_key("another token"), ticket, IMG, "sender", now=0) is None


def test_tampered_or_malformed_tickets_fail() -> None:
    ticket = tickets.mint(KEY, IMG, "sender", "receiver", expiry=1000)
    version, expiry, receiver, sig = ticket.split(".")
    for bad in (
        f"{version}.{expiry}.intruder.{sig}",
        f"{version}.99999.{receiver}.{sig}",
        f"{version}.{expiry}.{receiver}.{'0' * len(sig)}",
        "",
        "v1.x.y",
        "v2.1000.receiver.abc",
        f"{version}.\u00b2\u00b3.{receiver}.{sig}",  # superscripts: isdigit(), yet int() raises
        f"{version}.\u0661\u0660\u0660\u0660.{receiver}.{sig}",  # Arabic-Indic digits
        f"{version}.{expiry}.{receiver}.{sig[:-1]}\u00e9",  # a header decoded as latin-1
    ):
        assert tickets.check(KEY, bad, IMG, "sender", now=0) is None


def test_receivers_with_dots_in_their_names() -> None:
    ticket = tickets.mint(KEY, IMG, "sender", "host.example.org", expiry=1000)
    assert tickets.check(KEY, ticket, IMG, "sender", now=0) == "host.example.org"
