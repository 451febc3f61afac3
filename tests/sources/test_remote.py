"""The login-based source URL (ftp, ftps, sftp): parsed once, refused with the accepted form named."""

import pytest

from vidmill.errors import UrlRefused
from vidmill.sources.remote import parse_remote


def test_parses_credentials_port_and_path_with_escapes():
    r = parse_remote("sftp://us%40er:p%2Fw@Files.Example.com:2222/in/a%20b.mp4", "sftp")
    assert (r.scheme, r.host, r.port, r.user, r.password, r.path) == (
        "sftp", "files.example.com", 2222, "us@er", "p/w", "in/a b.mp4")
    assert r.where() == "sftp://files.example.com:2222"  # never the credentials


def test_without_credentials_or_port():
    r = parse_remote("FTPS://host/a.mp4", "ftp[s]")
    assert (r.scheme, r.port, r.user, r.password, r.where()) == ("ftps", None, None, None, "ftps://host")


@pytest.mark.parametrize("url", ["ftp://host/", "ftp://host", "ftp:///a.mp4", "ftp://host/dir/",
                                 "ftp://host/a.mp4?x=1", "ftp://host/a.mp4#f", "ftp://host:99999/a.mp4"])
def test_refuses_what_is_not_one_file(url):
    with pytest.raises(UrlRefused, match=r"ftp\[s\]://"):
        parse_remote(url, "ftp[s]")
