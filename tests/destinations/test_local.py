"""destinations.local: atomic publish into files/<unguessable id>/, and safe_join for the file-serving route."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidmill.errors import StorageError
from vidmill.destinations.local import Published, publish, safe_join


@pytest.fixture
def work(tmp_path) -> Path:
    directory = tmp_path / "work" / "task" / "job"
    directory.mkdir(parents=True)
    return directory


@pytest.fixture
def files_root(tmp_path) -> Path:
    return tmp_path / "files"


def make(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_publish_moves_files_under_one_new_id(work, files_root):
    a = make(work, "video.mp4", b"a" * 10)
    b = make(work, "thumb.jpg", b"bb")
    published = publish([a, b], files_root=files_root)

    file_id = published[0].relative_path.split("/")[0]
    assert published == [
        Published(relative_path=f"{file_id}/video.mp4", size=10, path=files_root / file_id / "video.mp4"),
        Published(relative_path=f"{file_id}/thumb.jpg", size=2, path=files_root / file_id / "thumb.jpg"),
    ]
    assert (files_root / file_id / "video.mp4").read_bytes() == b"a" * 10
    assert not a.exists() and not b.exists()
    assert sorted(p.name for p in files_root.iterdir()) == [file_id]  # no staging dir left


def test_publish_is_a_rename_not_a_copy(work, files_root):
    src = make(work, "out.mp4", b"data")
    inode = os.stat(src).st_ino
    (published,) = publish([src], files_root=files_root)
    assert os.stat(published.path).st_ino == inode


def test_ids_are_unguessable_and_differ(work, files_root):
    ids = set()
    for i in range(20):
        (published,) = publish([make(work, "out.mp4", b"%d" % i)], files_root=files_root)
        ids.add(published.relative_path.split("/")[0])
    assert len(ids) == 20
    assert all(len(i) == 32 and "/" not in i and "." not in i for i in ids)


def test_failed_publish_moves_nothing(work, files_root):
    good = make(work, "good.mp4", b"g")
    missing = work / "missing.mp4"
    with pytest.raises(StorageError, match="missing.mp4"):
        publish([good, missing], files_root=files_root)
    assert good.read_bytes() == b"g"
    assert not files_root.exists() or list(files_root.iterdir()) == []


def test_failure_mid_publish_rolls_back(work, files_root, monkeypatch):
    first = make(work, "a.mp4", b"a")
    second = make(work, "b.mp4", b"b")
    real_rename = os.rename

    def flaky(src, dst):
        if Path(src) == second:
            raise OSError(18, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(StorageError, match="cross-device"):
        publish([first, second], files_root=files_root)
    assert first.read_bytes() == b"a" and second.read_bytes() == b"b"
    assert list(files_root.iterdir()) == []


def test_publish_refuses_nothing(files_root):
    with pytest.raises(StorageError, match="nothing to publish"):
        publish([], files_root=files_root)


def test_publish_refuses_duplicate_names(work, files_root):
    (work / "x").mkdir()
    files = [make(work, "out.mp4", b"1"), make(work / "x", "out.mp4", b"2")]
    with pytest.raises(StorageError, match="same name"):
        publish(files, files_root=files_root)
    assert all(f.exists() for f in files)


def test_publish_refuses_symlinks_and_directories(work, files_root, tmp_path):
    secret = make(tmp_path, "secret.txt", b"s")
    link = work / "link.mp4"
    link.symlink_to(secret)
    with pytest.raises(StorageError, match="not a regular file"):
        publish([link], files_root=files_root)
    with pytest.raises(StorageError, match="not a regular file"):
        publish([work], files_root=files_root)


@pytest.fixture
def served(tmp_path) -> Path:
    root = tmp_path / "files"
    (root / "abc").mkdir(parents=True)
    (root / "abc" / "video.mp4").write_bytes(b"v")
    (tmp_path / "outside.txt").write_bytes(b"o")
    (root / "abc" / "escape").symlink_to(tmp_path / "outside.txt")
    (root / "abc" / "escape-dir").symlink_to(tmp_path)
    (root / "abc" / "inside").symlink_to(root / "abc" / "video.mp4")
    return root


@pytest.mark.parametrize(
    "relative",
    [
        pytest.param("../x", id="dotdot"),
        pytest.param("../files/abc/video.mp4", id="dotdot-back-in"),
        pytest.param("a/../../x", id="nested-dotdot"),
        pytest.param("abc/..", id="trailing-dotdot"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("//etc/passwd", id="double-slash-absolute"),
        pytest.param("abc/video.mp4\x00.txt", id="nul"),
        pytest.param("abc\\..\\..\\x", id="backslash"),
        pytest.param("abc/escape", id="symlink-file-out"),
        pytest.param("abc/escape-dir/outside.txt", id="symlink-dir-out"),
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("./", id="dot-slash"),
    ],
)
def test_safe_join_refuses_escapes(served, relative):
    with pytest.raises(StorageError, match="path refused"):
        safe_join(served, relative)


@pytest.mark.parametrize(
    "relative, expected",
    [
        pytest.param("abc/video.mp4", "abc/video.mp4", id="plain"),
        pytest.param("./abc//video.mp4", "abc/video.mp4", id="redundant-separators"),
        pytest.param("abc/inside", "abc/video.mp4", id="symlink-inside"),
        pytest.param("abc/not-yet.mp4", "abc/not-yet.mp4", id="missing-file-is-the-route's-404"),
        pytest.param("abc/..video", "abc/..video", id="dots-in-name"),
    ],
)
def test_safe_join_allows_paths_inside(served, relative, expected):
    assert safe_join(served, relative) == served.resolve() / expected


def test_publish_keeps_relative_names_of_a_many_file_output(tmp_path):
    work = tmp_path / "work"
    (work / "720p").mkdir(parents=True)
    (work / "master.m3u8").write_text("#EXTM3U\n")
    (work / "720p" / "seg_1.ts").write_bytes(b"ts")
    root = tmp_path / "files"
    published = publish([work / "master.m3u8", work / "720p" / "seg_1.ts"], files_root=root,
                        names=["master.m3u8", "720p/seg_1.ts"])
    file_id = published[0].relative_path.split("/")[0]
    assert [p.relative_path for p in published] == [f"{file_id}/master.m3u8", f"{file_id}/720p/seg_1.ts"]
    assert (root / file_id / "720p" / "seg_1.ts").read_bytes() == b"ts"


def test_publish_refuses_names_that_escape(tmp_path):
    (tmp_path / "a.ts").write_bytes(b"x")
    with pytest.raises(StorageError, match="refused"):
        publish([tmp_path / "a.ts"], files_root=tmp_path / "files", names=["../a.ts"])
    assert (tmp_path / "a.ts").exists()
