"""Where status hooks may be sent: public addresses only, unless configured.

A hook URL is the tenant's choice and the POST leaves from the server's
network position, so without a policy a tenant could reach the server's
loopback, its private network or the cloud's metadata service. The policy
refuses private, loopback, link-local, unspecified, multicast, reserved and
other non-global addresses, and the metadata names and addresses, unless
the operator allows them (:meth:`HookPolicy.parse`: networks such as
``127.0.0.0/8``, or host names). It is applied twice:

- to the URL's text when a job is enqueued over HTTP (:meth:`HookPolicy.check_text`),
  with host spellings the resolver accepts read as it reads them
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1);
- to every address the host resolves to at delivery time
  (:meth:`HookPolicy.check_address`), and the delivery connects to the
  address that was checked, so a name that resolves elsewhere later (DNS
  rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HOOK_ALLOW_ENV = "CALLBOARD_HOOK_ALLOW"
# Cloud instance metadata: refused even inside an allowed network, unless
# allowed by exactly that address or name.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HEX = frozenset("0123456789abcdef")


class HookRefused(ValueError):
    """The policy does not let a status hook reach this host or address."""


@dataclass(frozen=True, slots=True)
class HookPolicy:
    """Networks and host names a status hook may reach beyond public addresses."""

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HookPolicy:
        """A policy allowing each entry: a network (``10.0.0.0/8``), an address or a host name."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or _numeric(entry) or not _is_host_name(entry):
                raise ValueError(
                    f"hook allow entry {raw!r} is neither a network, an address nor a host name"
                )
            hosts.add(_normal(entry))
        return cls(tuple(networks), frozenset(hosts))

    def describe(self) -> list[str]:
        return [str(n) for n in self.allow_networks] + sorted(self.allow_hosts)

    def check_text(self, host: str) -> IPAddress | None:
        """Refuse a URL host by its text; the address when the host is numeric."""
        name = _normal(host)
        if name in self.allow_hosts:
            return None
        address = parse_address(name)
        if address is not None:
            self.check_address(address, host)
            return address
        if name in METADATA_HOSTS:
            raise HookRefused(f"host {host!r} is a cloud metadata service")
        if name == "localhost" or name.endswith(".localhost"):
            raise HookRefused(f"host {host!r} is a loopback name")
        return None

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is allowed by name, whatever it resolves to."""
        return _normal(host) in self.allow_hosts

    def check_address(self, address: IPAddress, host: str | None = None) -> None:
        """Raise :class:`HookRefused` unless a hook may connect to ``address``."""
        for each in _embedded(address):
            problem = self._problem(each)
            if problem is not None:
                shown = f"{host!r} ({each})" if host and host != str(each) else str(each)
                raise HookRefused(f"host {shown} is {problem}")

    def _problem(self, address: IPAddress) -> str | None:
        allowed = [n for n in self.allow_networks if address in n]
        if address in METADATA_ADDRESSES:
            exact = any(n.num_addresses == 1 for n in allowed)
            return None if exact else "a cloud metadata address"
        if allowed:
            return None
        for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
            if getattr(address, f"is_{kind}"):
                article = "an" if kind[0] == "u" else "a"
                return f"{article} {kind.replace('_', '-')} address"
        if not address.is_global:
            return "not a public address"
        return None


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an address, read as the resolver reads it; None for a name.

    A host whose last label is a number is an IPv4 address in one of the
    spellings ``inet_aton`` accepts (decimal, octal, hex, fewer than four
    parts), or is refused: the resolver would read it as one.
    """
    name = _normal(host)
    if ":" in name:  # IPv6, perhaps with a zone
        try:
            return ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            raise HookRefused(f"host {host!r} is not a valid IPv6 address") from None
    if not _numeric(name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        raise HookRefused(f"host {host!r} is not a valid IPv4 address") from None


def _numeric(name: str) -> bool:
    """Whether the URL standard reads ``name`` as IPv4: its last label is a number."""
    last = name.rstrip(".").rsplit(".", 1)[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and set(last[2:].lower()) <= _HEX


def _normal(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _is_host_name(entry: str) -> bool:
    labels = _normal(entry).split(".")
    return all(label and len(label) <= 63 for label in labels) and all(
        c.isalnum() or c in "-_" for label in labels for c in label
    )


def _embedded(address: IPAddress) -> list[IPAddress]:
    """``address`` and any IPv4 address it carries (mapped or NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        if address in _NAT64:
            return [address, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return [address]
