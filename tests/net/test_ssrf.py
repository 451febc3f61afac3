"""The SSRF guard: every refused class, with and without allow_private; nothing here touches the network."""

from __future__ import annotations

import re
import socket

import pytest

from vidmill.errors import UnresolvedHost, UrlRefused
from vidmill.net import ssrf
from vidmill.net.ssrf import ResolvedUrl, check_url

# Names the fake resolver knows; anything else that is not localhost or a literal fails like NXDOMAIN.
FAKE_DNS = {
    "media.example": ["93.184.216.34"],
    "dual.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "metadata.example": ["93.184.216.34", "169.254.169.254"],
    "v6loop.example": ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "xn--bcher-kva.example": ["93.184.216.34"],
    "imds6.example": ["2606:2800:220:1:248:1893:25c8:1946", "fd00:ec2::254"],
    "alibaba.example": ["100.100.100.200"],
}
REAL_GETADDRINFO = socket.getaddrinfo


def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if host in FAKE_DNS:
        out = []
        for ip in FAKE_DNS[host]:
            if ":" in ip:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return out
    if host == "localhost":
        return REAL_GETADDRINFO(host, port, family, type, proto, flags)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(autouse=True)
def _fake_dns(monkeypatch):
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake_getaddrinfo)


ALWAYS_REFUSED = [
    pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata-dotted"),
    pytest.param("http://2852039166/", id="metadata-decimal"),
    pytest.param("http://0xa9fea9fe/", id="metadata-hex"),
    pytest.param("http://0xA9.0xFE.0xA9.0xFE/", id="metadata-hex-parts"),
    pytest.param("http://0251.0376.0251.0376/", id="metadata-octal"),
    pytest.param("http://169.254.43518/", id="metadata-two-part"),
    pytest.param("http://169.16689662/", id="metadata-two-part-b"),
    pytest.param("http://169.254.169.254./", id="metadata-trailing-dot"),
    pytest.param("http://[::ffff:169.254.169.254]/", id="metadata-v4-mapped"),
    pytest.param("http://[::ffff:a9fe:a9fe]/", id="metadata-v4-mapped-hex"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/", id="metadata-nat64"),
    pytest.param("http://[2002:a9fe:a9fe::1]/", id="metadata-6to4"),
    pytest.param("http://metadata.example/", id="metadata-via-dns-among-public"),
    pytest.param("http://mapped.example/", id="metadata-via-dns-mapped"),
    pytest.param("http://169.254.0.1:8080/", id="link-local-v4"),
    pytest.param("http://[fe80::1]/", id="link-local-v6"),
    pytest.param("http://0.0.0.0/", id="unspecified-v4"),
    pytest.param("http://0/", id="unspecified-v4-zero"),
    pytest.param("http://0.1.2.3/", id="this-network"),
    pytest.param("http://[::]/", id="unspecified-v6"),
    pytest.param("http://224.0.0.1/", id="multicast-v4"),
    pytest.param("http://239.255.255.250:1900/", id="multicast-ssdp"),
    pytest.param("http://[ff02::1]/", id="multicast-v6"),
    pytest.param("http://255.255.255.255/", id="broadcast"),
    pytest.param("http://240.0.0.1/", id="reserved-v4"),
    pytest.param("http://192.0.2.10/", id="documentation-v4"),
    pytest.param("http://[2001:db8::1]/", id="documentation-v6"),
    pytest.param("http://[::127.0.0.1]/", id="v4-compatible-v6"),
    pytest.param("http://[100::1]/", id="discard-v6"),
]

PRIVATE = [
    pytest.param("http://127.0.0.1/", id="loopback"),
    pytest.param("http://127.1.2.3:9000/x", id="loopback-range"),
    pytest.param("http://2130706433/", id="loopback-decimal"),
    pytest.param("http://0x7f.1/", id="loopback-hex-two-part"),
    pytest.param("http://0x7f000001/", id="loopback-hex"),
    pytest.param("http://0177.0.0.1/", id="loopback-octal"),
    pytest.param("http://127.000.000.001/", id="loopback-zero-padded"),
    pytest.param("http://127.1/", id="loopback-short"),
    pytest.param("http://[::1]/", id="loopback-v6"),
    pytest.param("http://[::ffff:127.0.0.1]/", id="loopback-v4-mapped"),
    pytest.param("http://[0:0:0:0:0:ffff:7f00:1]/", id="loopback-v4-mapped-long"),
    pytest.param("http://localhost:8000/", id="localhost-name"),
    pytest.param("http://LocalHost/", id="localhost-mixed-case"),
    pytest.param("http://v6loop.example/", id="name-with-v6-loopback"),
    pytest.param("http://10.1.2.3/", id="private-10"),
    pytest.param("http://172.16.0.1/", id="private-172-16"),
    pytest.param("http://172.31.255.255/", id="private-172-31"),
    pytest.param("http://192.168.1.1/", id="private-192-168"),
    pytest.param("http://3232235777/", id="private-192-168-decimal"),
    pytest.param("http://mixed.example/", id="name-with-one-private-address"),
    pytest.param("http://[fc00::1]/", id="ula-fc"),
    pytest.param("http://[fd12:3456::1]/", id="ula-fd"),
    pytest.param("http://[::ffff:10.0.0.1]/", id="private-v4-mapped"),
    pytest.param("http://[64:ff9b::a00:1]/", id="private-nat64"),
    pytest.param("http://100.64.0.1/", id="cgnat-low"),
    pytest.param("http://100.127.255.254/", id="cgnat-high"),
]

PUBLIC = [
    pytest.param("http://93.184.216.34/", id="public-v4"),
    pytest.param("https://93.184.216.34:8443/a?b=c", id="public-v4-port"),
    pytest.param("http://1.1.1.1/", id="public-1111"),
    pytest.param("http://172.32.0.1/", id="just-outside-172-16"),
    pytest.param("http://100.128.0.1/", id="just-outside-cgnat"),
    pytest.param("http://169.255.0.1/", id="just-outside-link-local"),
    pytest.param("http://[2606:2800:220:1:248:1893:25c8:1946]/", id="public-v6"),
    pytest.param("http://[::ffff:93.184.216.34]/", id="public-v4-mapped"),
    pytest.param("http://media.example/video.mp4", id="public-name"),
    pytest.param("http://dual.example/", id="public-name-dual-stack"),
    pytest.param("http://bücher.example/", id="idna-name"),
]


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow-private"])
@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_always_refused(url, allow_private):
    with pytest.raises(UrlRefused, match="never allowed"):
        check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_refused_by_default(url):
    with pytest.raises(UrlRefused, match="private networks are not allowed"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_allowed_when_enabled(url):
    resolved = check_url(url, allow_private=True)
    assert resolved.url == url


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow-private"])
@pytest.mark.parametrize("url", PUBLIC)
def test_public_allowed(url, allow_private):
    resolved = check_url(url, allow_private=allow_private)
    assert resolved.url == url
    assert resolved.ip in resolved.addresses


@pytest.mark.parametrize(
    "url, scheme",
    [
        pytest.param("file:///etc/passwd", "file", id="file"),
        pytest.param("ftp://93.184.216.34/x.mp4", "ftp", id="ftp"),
        pytest.param("gopher://127.0.0.1:70/_x", "gopher", id="gopher"),
        pytest.param("data:text/plain,hello", "data", id="data"),
        pytest.param("javascript:alert(1)", "javascript", id="javascript"),
        pytest.param("dict://127.0.0.1:11211/stat", "dict", id="dict"),
        pytest.param("s3://bucket/key", "s3", id="s3"),
        pytest.param("//93.184.216.34/x", "(none)", id="scheme-relative"),
    ],
)
def test_scheme_refused(url, scheme):
    with pytest.raises(UrlRefused, match=re.escape(f"scheme '{scheme}:' is not allowed")):
        check_url(url, allow_private=True)


def test_other_schemes_when_asked():
    resolved = check_url("ftp://93.184.216.34/in/x.mp4", allow_private=False, schemes={"ftp"})
    assert (resolved.scheme, resolved.port) == ("ftp", 21)
    with pytest.raises(UrlRefused, match="'https:'"):
        check_url("https://93.184.216.34/", allow_private=False, schemes={"ftp"})


@pytest.mark.parametrize(
    "url, reason",
    [
        pytest.param("http://", "no host", id="no-host"),
        pytest.param("http:///etc/passwd", "no host", id="empty-host"),
        pytest.param("http://:80/", "no host", id="port-only"),
        pytest.param("", "empty URL", id="empty"),
        pytest.param("http://user:pw@93.184.216.34/", "credentials", id="userinfo"),
        pytest.param("http://93.184.216.34@127.0.0.1/", "credentials", id="userinfo-decoy"),
        pytest.param("http://127.0.0.1:80@93.184.216.34/", "credentials", id="userinfo-port-decoy"),
        pytest.param("http://127.0.0.1\\@93.184.216.34/", "backslash", id="backslash-decoy"),
        pytest.param("http://93.184.216.34 /", "whitespace", id="space"),
        pytest.param("http://93.184.216.34/\r\nHost: evil", "whitespace", id="crlf-injection"),
        pytest.param("http://93.184.216.34:0/", "port", id="port-zero"),
        pytest.param("http://93.184.216.34:65536/", "port", id="port-too-big"),
        pytest.param("http://93.184.216.34:99999999/", "port", id="port-huge"),
        pytest.param("http://93.184.216.34:-1/", "port", id="port-negative"),
        pytest.param("http://93.184.216.34:http/", "port", id="port-name"),
        pytest.param("http://93.184.216.34:/", "empty port", id="port-empty"),
        pytest.param("http://1.2.3.4.5/", "malformed numeric", id="five-parts"),
        pytest.param("http://256.1.1.1/", "malformed numeric", id="octet-too-big"),
        pytest.param("http://0x100000000/", "malformed numeric", id="number-too-big"),
        pytest.param("http://08.0.0.1/", "malformed numeric", id="bad-octal"),
        pytest.param("http://[::1/", "cannot parse", id="unclosed-bracket"),
        pytest.param("http://[fe80::1%25eth0]/", "zone identifiers", id="v6-zone-id"),
        pytest.param("http://exa_mple..com/", "invalid host name", id="empty-label"),
        pytest.param("http://nxdomain.example/", "does not resolve", id="nxdomain"),
    ],
)
def test_malformed_refused(url, reason):
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, allow_private=True)


def test_resolved_url_pins_vetted_address():
    resolved = check_url("https://Media.Example:8443/a/b.mp4?sig=1#frag", allow_private=False)
    assert resolved == ResolvedUrl(
        url="https://Media.Example:8443/a/b.mp4?sig=1#frag",
        scheme="https",
        host="media.example",
        port=8443,
        ip="93.184.216.34",
        addresses=("93.184.216.34",),
        target="/a/b.mp4?sig=1",
    )
    assert resolved.connect_url == "https://93.184.216.34:8443/a/b.mp4?sig=1"
    assert resolved.host_header == "media.example:8443"
    assert resolved.request_extensions == {"sni_hostname": "media.example"}


def test_resolved_url_defaults_and_ipv6():
    plain = check_url("http://media.example", allow_private=False)
    assert (plain.port, plain.target, plain.host_header, plain.request_extensions) == (80, "/", "media.example", {})
    v6 = check_url("http://[2606:2800:220:1:248:1893:25c8:1946]:8080/x", allow_private=False)
    assert v6.connect_url == "http://[2606:2800:220:1:248:1893:25c8:1946]:8080/x"
    assert v6.host_header == "[2606:2800:220:1:248:1893:25c8:1946]:8080"


def test_numeric_spellings_pin_the_canonical_address():
    resolved = check_url("http://0x7f.1:8080/x", allow_private=True)
    assert (resolved.host, resolved.ip, resolved.connect_url) == ("127.0.0.1", "127.0.0.1", "http://127.0.0.1:8080/x")


def test_v4_mapped_connects_over_v4():
    resolved = check_url("http://[::ffff:93.184.216.34]/", allow_private=False)
    assert resolved.ip == "93.184.216.34"


def test_idna_host_is_sent_in_ascii():
    resolved = check_url("https://bücher.example/", allow_private=False)
    assert resolved.host == "xn--bcher-kva.example"
    assert resolved.request_extensions == {"sni_hostname": "xn--bcher-kva.example"}


def test_every_address_is_checked_and_all_are_kept():
    resolved = check_url("http://dual.example/", allow_private=False)
    assert resolved.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert resolved.ip == "93.184.216.34"


def test_refusal_message_names_host_and_reason():
    with pytest.raises(UrlRefused) as info:
        check_url("http://metadata.example/latest", allow_private=True)
    assert "metadata.example" in info.value.message
    assert "169.254.169.254" in info.value.message
    assert "link-local" in info.value.message


# Cloud metadata / credential endpoints: refused even when private networks are allowed, in every spelling.
METADATA = [
    pytest.param("http://169.254.169.254/latest/meta-data/", "169.254.169.254", id="aws-gcp-azure-v4"),
    pytest.param("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254", id="aws-imds-v6"),
    pytest.param("http://[fd00:ec2:0:0:0:0:0:254]/", "fd00:ec2::254", id="aws-imds-v6-long"),
    pytest.param("http://[FD00:EC2::254]/", "fd00:ec2::254", id="aws-imds-v6-upper"),
    pytest.param("http://imds6.example/", "fd00:ec2::254", id="aws-imds-v6-via-dns"),
    pytest.param("http://[fd00:ec2::23]/", "fd00:ec2::23", id="aws-eks-pod-identity-v6"),
    pytest.param("http://100.100.100.200/latest/meta-data/", "100.100.100.200", id="alibaba"),
    pytest.param("http://1684301000/", "100.100.100.200", id="alibaba-decimal"),
    pytest.param("http://0x646464c8/", "100.100.100.200", id="alibaba-hex"),
    pytest.param("http://0144.0144.0144.0310/", "100.100.100.200", id="alibaba-octal"),
    pytest.param("http://100.6579400/", "100.100.100.200", id="alibaba-two-part"),
    pytest.param("http://alibaba.example/", "100.100.100.200", id="alibaba-via-dns"),
    pytest.param("http://[::ffff:100.100.100.200]/", "100.100.100.200", id="alibaba-v4-mapped"),
    pytest.param("http://[::ffff:6464:64c8]/", "100.100.100.200", id="alibaba-v4-mapped-hex"),
    pytest.param("http://[64:ff9b::100.100.100.200]/", "100.100.100.200", id="alibaba-nat64"),
    pytest.param("http://[64:ff9b::6464:64c8]/", "100.100.100.200", id="alibaba-nat64-hex"),
    pytest.param("http://[64:ff9b:1::6464:64c8]/", "100.100.100.200", id="alibaba-local-nat64-96"),
    pytest.param("http://[64:ff9b:1:6464:64:c800::]/", "100.100.100.200", id="alibaba-local-nat64-48"),
    pytest.param("http://[64:ff9b:1:64:64:64c8::]/", "100.100.100.200", id="alibaba-local-nat64-56"),
    pytest.param("http://[64:ff9b:1:0:64:6464:c800:0]/", "100.100.100.200", id="alibaba-local-nat64-64"),
    pytest.param("http://[2002:6464:64c8::1]/", "100.100.100.200", id="alibaba-6to4"),
    pytest.param("http://192.0.0.192/opc/v2/instance/", "192.0.0.192", id="oracle"),
    pytest.param("http://[::ffff:192.0.0.192]/", "192.0.0.192", id="oracle-v4-mapped"),
    pytest.param("http://[64:ff9b::c000:c0]/", "192.0.0.192", id="oracle-nat64"),
    pytest.param("http://168.63.129.16/machine?comp=goalstate", "168.63.129.16", id="azure-wireserver"),
    pytest.param("http://[64:ff9b:1::a9fe:a9fe]/", "169.254.169.254", id="link-local-local-nat64"),
]


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow-private"])
@pytest.mark.parametrize("url, address", METADATA)
def test_cloud_metadata_always_refused(url, address, allow_private):
    with pytest.raises(UrlRefused, match="never allowed") as info:
        check_url(url, allow_private=allow_private)
    assert address in info.value.message
    assert "metadata" in info.value.message or "link-local" in info.value.message


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[fd00:ec2::253]/", id="aws-dns-v6-is-just-private"),
        pytest.param("http://[fd00:ec3::254]/", id="other-ula"),
        pytest.param("http://100.100.100.201/", id="next-to-alibaba"),
        pytest.param("http://192.0.0.193/", id="next-to-oracle"),
        pytest.param("http://[64:ff9b:1::a00:1]/", id="local-nat64-private"),
    ],
)
def test_metadata_list_is_exact(url):
    """Neighbours of the metadata addresses keep their ordinary class (here: private, or reserved)."""
    try:
        check_url(url, allow_private=True)
    except UrlRefused as exc:
        assert "metadata" not in exc.message


def test_unresolvable_host_raises_unresolved_host():
    with pytest.raises(UnresolvedHost, match="'nxdomain.example' does not resolve") as info:
        check_url("http://nxdomain.example/", allow_private=False)
    assert isinstance(info.value, UrlRefused)  # callers that catch UrlRefused still see it
    assert isinstance(info.value.__cause__, socket.gaierror)


def test_host_with_no_usable_address_raises_unresolved_host(monkeypatch):
    monkeypatch.setattr(ssrf.socket, "getaddrinfo", lambda *a, **k: [])
    with pytest.raises(UnresolvedHost, match="does not resolve"):
        check_url("http://empty.example/", allow_private=True)


@pytest.mark.parametrize("url", ["http://192.0.2.1/", "http://10.0.0.1/", "ftp://media.example/"])
def test_other_refusals_are_not_unresolved_host(url):
    with pytest.raises(UrlRefused) as info:
        check_url(url, allow_private=False)
    assert not isinstance(info.value, UnresolvedHost)
