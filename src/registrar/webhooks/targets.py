"""Where a webhook may be sent: the URL's shape, and the addresses its host resolves to (the SSRF
guard).

A subscription's URL is checked when it is created or changed (a 400 naming the problem) and
again before every attempt, after a fresh DNS lookup: a name that pointed at a public address
when the subscription was made may point at 169.254.169.254 or 127.0.0.1 later (DNS rebinding).
The attempt then connects to the very address that was checked (`Target.address`), with the
URL's host in `Host` and in TLS's server name, so no second lookup can slip another address in.
Every resolved address must be public: one private answer among public ones refuses the host.
REGISTRAR_WEBHOOK_ALLOW_PRIVATE=true lifts the address rule (a receiver on the same machine or
network, and the tests' local receivers); the URL's shape is checked always.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata services answer on these; link-local and private rules refuse them already,
# named here so the refusal says what they are.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)
RESOLVE_TIMEOUT_SECONDS = 5.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be sent to; the message says why, for a 400 or the delivery log."""


@dataclass(frozen=True)
class Target:
    """A URL whose host resolved to `address`, which the attempt connects to."""

    url: str
    host: str  # as in the URL, without brackets
    port: int
    address: Address

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host (the path and query kept)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return parts._replace(netloc=f"{literal}:{self.port}").geturl()

    @property
    def host_header(self) -> str:
        literal = f"[{self.host}]" if ":" in self.host else self.host
        scheme = urlsplit(self.url).scheme
        return literal if DEFAULT_PORTS[scheme] == self.port else f"{literal}:{self.port}"


def url_problems(url: object) -> list[str]:
    """What is wrong with a subscription URL's shape (empty when nothing), without DNS."""
    if not isinstance(url, str):
        return ["url: must be a string"]
    if not url or len(url) > MAX_URL_LENGTH:
        return [f"url: 1 to {MAX_URL_LENGTH} characters"]
    if not url.isascii() or not url.isprintable() or " " in url:
        return ["url: printable ASCII without spaces (percent-encode the rest)"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [f"url: not a URL ({exc})"]
    if parts.scheme not in DEFAULT_PORTS:
        return ["url: the scheme must be http or https"]
    if not parts.hostname:
        return ["url: a host is required"]
    if parts.username is not None or parts.password is not None:
        return ["url: credentials in the URL are not allowed (they would be logged and shown)"]
    if parts.fragment:
        return ["url: a fragment (#...) is never sent; leave it out"]
    if port == 0:
        return ["url: port 0 is not a port"]
    return []


def refusal(address: Address) -> str | None:
    """Why `address` is not a public one (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_multicast:
        return "not a public address"
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Look the URL's host up now and check every address; the first is the one to connect to.
    TargetRefused when the URL is malformed, the name does not resolve, or an address is not
    public (unless `allow_private`)."""
    problems = url_problems(url)
    if problems:
        raise TargetRefused(problems[0])
    parts: SplitResult = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                ),
                RESOLVE_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError, UnicodeError):
            raise TargetRefused(f"url: the host {host} does not resolve") from None
        addresses = []
        for _family, _type, _proto, _name, sockaddr in infos:
            # The scope id of a link-local IPv6 answer ("fe80::1%eth0") is not part of the address.
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise TargetRefused(f"url: the host {host} does not resolve")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise TargetRefused(
                    f"url: {host} resolves to {address}, {why}; webhooks go to public addresses "
                    "only (REGISTRAR_WEBHOOK_ALLOW_PRIVATE=true lifts this)"
                )
    return Target(url=url, host=host, port=port, address=addresses[0])
