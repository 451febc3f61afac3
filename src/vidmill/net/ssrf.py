"""The SSRF guard: every outbound URL (source, callback, destination) passes ``check_url`` first.

``check_url`` parses the URL strictly, resolves the host once (all addresses, IPv4 and IPv6) and refuses
the URL if *any* address falls in a forbidden range. A name that does not resolve raises ``UnresolvedHost``
(a ``UrlRefused``), which callers may retry: DNS can be down for a moment. It returns a ``ResolvedUrl`` carrying the vetted IP so
the caller connects to exactly that address (``connect_url`` + ``host_header`` + ``request_extensions``)
instead of resolving the name again: no DNS-rebinding window between the check and the connection.

Address classes (see ``classify``):

    always refused     cloud metadata / credential endpoints, checked first so that allow_private never
                       reaches them: 169.254/16 (AWS, GCP, Azure, OpenStack, ...), AWS IPv6 fd00:ec2::254 and
                       fd00:ec2::23 (inside fc00::/7), Alibaba 100.100.100.200 (inside CGNAT), Oracle
                       192.0.0.192, Azure WireServer 168.63.129.16;
                       link-local (fe80::/10), unspecified and
                       "this network" (0/8, ::), multicast, reserved / broadcast / documentation ranges,
                       IPv6 outside global unicast 2000::/3
    refused unless     loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10),
    allow_private      CGNAT 100.64/10

IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``) are judged by the embedded IPv4 address. Local-use NAT64 (``64:ff9b:1::/48``) is private, but
an IPv4 address embedded in it at any RFC 6052 position is still checked against the metadata list. Numeric IPv4 spellings that ``inet_aton`` accepts
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``) are decoded here, without the resolver, to the address a
connection would really reach.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from vidmill.errors import UnresolvedHost, UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "sftp": 22, "ws": 80, "wss": 443}

ALWAYS = "always"
PRIVATE = "private"
PUBLIC = "public"


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Cloud metadata and credential endpoints: never allowed, whatever allow_private says. Each table below
# starts with its metadata entries so they win over any private / CGNAT range they sit inside.
_METADATA_V4 = (
    (_nets("169.254.0.0/16"), "a link-local address (cloud metadata range)", ALWAYS),
    (
        _nets("100.100.100.200/32", "192.0.0.192/32", "168.63.129.16/32"),
        "a cloud metadata address (Alibaba Cloud, Oracle Cloud or Azure WireServer)",
        ALWAYS,
    ),
)
_METADATA_V6 = (
    (_nets("fd00:ec2::254/128", "fd00:ec2::23/128"), "a cloud metadata address (AWS IPv6 IMDS / EKS Pod Identity)",
     ALWAYS),
)

# (networks, description, class). Order matters: the first match wins. Explicit tables rather than
# ipaddress.is_private & co., whose definitions changed between Python patch releases.
_V4_TABLE = (
    *_METADATA_V4,
    (_nets("0.0.0.0/8"), "an unspecified / 'this network' address", ALWAYS),
    (_nets("224.0.0.0/4"), "a multicast address", ALWAYS),
    (_nets("240.0.0.0/4"), "a reserved or broadcast address", ALWAYS),
    (
        _nets("192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"),
        "a reserved (protocol assignment, documentation or benchmarking) address",
        ALWAYS,
    ),
    (_nets("127.0.0.0/8"), "a loopback address", PRIVATE),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "a private address", PRIVATE),
    (_nets("100.64.0.0/10"), "a carrier-grade NAT address", PRIVATE),
)
_V6_TABLE = (
    *_METADATA_V6,
    (_nets("fe80::/10"), "a link-local address", ALWAYS),
    (_nets("::/128"), "an unspecified address", ALWAYS),
    (_nets("ff00::/8"), "a multicast address", ALWAYS),
    (_nets("::1/128"), "a loopback address", PRIVATE),
    (_nets("fc00::/7", "fec0::/10", "64:ff9b:1::/48"), "a private address", PRIVATE),
    (_nets("2001:db8::/32", "2001::/23"), "a reserved (documentation or protocol) address", ALWAYS),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the operator picks the embedding length

_HOSTNAME_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$")
_NUMERIC_PART_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class ResolvedUrl:
    """A URL that passed the guard, with the address to connect to.

    ``url`` is the original URL, ``host`` its host in ASCII (IDNA) form without brackets, ``ip`` the vetted
    address to connect to (the resolver's first choice) and ``addresses`` every address the host resolved
    to (all vetted).
    """

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    addresses: tuple[str, ...] = field(default=())
    target: str = "/"  # path + query, fragment dropped

    @property
    def host_header(self) -> str:
        """Value for the HTTP ``Host`` header: the real name, port only when not the scheme default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return host
        return f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        """The URL with its host replaced by the vetted IP: what the HTTP client actually connects to."""
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{ip}:{self.port}{self.target}"

    @property
    def request_extensions(self) -> dict[str, str]:
        """httpx request extensions: TLS must present and verify the real host name, not the IP."""
        if self.scheme in ("https", "wss"):
            return {"sni_hostname": self.host}
        return {}


def check_url(
    url: str, *, allow_private: bool, schemes: AbstractSet[str] = frozenset({"http", "https"})
) -> ResolvedUrl:
    """Vet ``url`` for an outbound connection; raise ``UrlRefused`` with the reason, or return it resolved.

    A host name that does not resolve raises the ``UrlRefused`` subclass ``UnresolvedHost`` (retryable).
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise UrlRefused(f"URL scheme '{scheme or '(none)'}:' is not allowed (allowed: {allowed})")
    netloc = parts.netloc
    if not netloc:
        raise UrlRefused("URL refused: no host in the URL")
    if "@" in netloc:
        raise UrlRefused("URL refused: credentials (user@host) in the URL are not allowed")
    host, port = _host_and_port(parts, scheme)

    literal = _parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
        host = str(literal) if literal.version == 4 else host
    else:
        host = _ascii_hostname(host)
        addresses = _resolve(host, port)
        if not addresses:
            raise UnresolvedHost(f"URL refused: host '{host}' does not resolve")

    for address in addresses:
        verdict, what = classify(address)
        if verdict == ALWAYS:
            raise UrlRefused(f"URL refused: host '{host}' is {address}, {what}; never allowed")
        if verdict == PRIVATE and not allow_private:
            raise UrlRefused(
                f"URL refused: host '{host}' is {address}, {what}; private networks are not allowed "
                "(set VIDMILL_ALLOW_PRIVATE_NETWORKS=true to allow them)"
            )

    # Connect to an IPv4-mapped address over IPv4: same host, no dependence on a dual-stack socket.
    connect_to = [a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a for a in addresses]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ResolvedUrl(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        ip=str(connect_to[0]),
        addresses=tuple(str(a) for a in connect_to),
        target=target,
    )


def classify(address: IPAddress) -> tuple[str, str]:
    """Return (class, description) for one address: class is ``always``, ``private`` or ``public``."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            verdict, what = classify(embedded)
            return verdict, f"{what} (as {embedded} embedded in IPv6)"
        if address in _LOCAL_NAT64:
            for embedded in _local_nat64_candidates(address):
                for networks, what, verdict in _METADATA_V4:
                    if any(embedded in net for net in networks):
                        return verdict, f"{what} (as {embedded} embedded in local-use NAT64)"
        table = _V6_TABLE
    else:
        table = _V4_TABLE
    for networks, what, verdict in table:
        if any(address in net for net in networks):
            return verdict, what
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return ALWAYS, "a reserved address (outside IPv6 global unicast)"
    return PUBLIC, "a public address"


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise UrlRefused("URL refused: empty URL")
    # Parsers disagree about these; a URL that needs them is not one we must fetch.
    if any(ord(c) < 0x21 or c == "\x7f" for c in url) or "\\" in url:
        raise UrlRefused("URL refused: whitespace, control characters or backslashes in the URL")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UrlRefused(f"URL refused: cannot parse URL ({exc})") from exc
    return parts


def _host_and_port(parts: SplitResult, scheme: str) -> tuple[str, int]:
    host = parts.hostname or ""
    if not host:
        raise UrlRefused("URL refused: no host in the URL")
    if "%" in host:
        raise UrlRefused("URL refused: IPv6 zone identifiers and percent-escapes are not allowed in the host")
    try:
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("URL refused: the port is not a number between 1 and 65535") from exc
    if port is None:
        if parts.netloc.endswith(":"):
            raise UrlRefused("URL refused: empty port")
        port = DEFAULT_PORTS.get(scheme)
        if port is None:
            raise UrlRefused(f"URL refused: no port given and no default port for '{scheme}:'")
    if not 1 <= port <= 65535:
        raise UrlRefused("URL refused: the port is not a number between 1 and 65535")
    return host, port


def _parse_ip_literal(host: str) -> IPAddress | None:
    """A literal IP in the host, canonical or any ``inet_aton`` spelling; ``None`` for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = (host[:-1] if host.endswith(".") else host).split(".")
    if not all(_NUMERIC_PART_RE.match(p) for p in parts):
        return None
    # From here the host looks numeric: decode it the way inet_aton (and so the resolver) would,
    # or refuse it; it must never fall through to DNS as a "name".
    try:
        values = [_parse_number(p) for p in parts]
    except ValueError as exc:
        raise UrlRefused(f"URL refused: malformed numeric host '{host}'") from exc
    if len(values) > 4:
        raise UrlRefused(f"URL refused: malformed numeric host '{host}'")
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise UrlRefused(f"URL refused: malformed numeric host '{host}'")
    number = 0
    for v in head:
        number = number * 256 + v
    number = (number << (8 * (5 - len(values)))) | last
    return ipaddress.IPv4Address(number)


def _parse_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # ValueError for 08, 09: inet_aton refuses those too
    return int(part)


def _ascii_hostname(host: str) -> str:
    try:
        ascii_host = host.encode("ascii").decode()
    except UnicodeEncodeError:
        try:
            import idna  # httpx's own dependency; IDNA 2008 like the client will use

            ascii_host = idna.encode(host, uts46=True).decode()
        except (idna.IDNAError, UnicodeError) as exc:
            raise UrlRefused(f"URL refused: invalid international host name ({exc})") from exc
    ascii_host = ascii_host.lower()
    if len(ascii_host) > 253 or not _HOSTNAME_RE.match(ascii_host):
        raise UrlRefused(f"URL refused: invalid host name '{ascii_host}'")
    return ascii_host


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def _local_nat64_candidates(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 address a 64:ff9b:1::/48 address embeds under each RFC 6052 prefix length that fits (48..96)."""
    n = int(address)
    bits = lambda start, count: (n >> (128 - start - count)) & ((1 << count) - 1)  # noqa: E731
    return [
        ipaddress.IPv4Address(v)
        for v in (
            bits(48, 16) << 16 | bits(72, 16),  # /48: bits 48-63, then 72-87 (64-71 is the zero u-octet)
            bits(56, 8) << 24 | bits(72, 24),  # /56
            bits(72, 32),  # /64
            bits(96, 32),  # /96
        )
    ]


def _resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host`` in resolver order, duplicates dropped. The seam tests replace."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"URL refused: host '{host}' does not resolve ({exc})") from exc
    seen: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen
