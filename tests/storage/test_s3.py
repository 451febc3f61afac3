"""s3:// source and destination against moto's S3 server (signing enforced), checked with boto3."""

from __future__ import annotations

import secrets

import pytest

from vidmill import destinations, sources
from vidmill.config import Settings
from vidmill.destinations import OutputFile, Target
from vidmill.errors import SourceError, SourceTooLarge, StorageError, UrlRefused

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path, allow_private_networks=True, storage_plain_http_hosts="127.0.0.1",
                    upload_part_size=5 * 1024**2, upload_max_attempts=2, storage_timeout=10)


@pytest.fixture
def bucket(moto_s3):
    name = f"b-{secrets.token_hex(4)}"
    moto_s3.client().create_bucket(Bucket=name)
    return name


def _file(tmp_path, name, size):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(secrets.token_bytes(size))
    return OutputFile(name, path)


def test_single_file_with_acl_storage_class_cache_control(moto_s3, bucket, settings, tmp_path):
    out = _file(tmp_path, "video.mp4", 12 * 1024**2 + 7)  # multipart: 3 parts of 5 MiB
    target = Target(url=f"s3://127.0.0.1:{moto_s3.port}/{bucket}/out/video.mp4", key=moto_s3.key,
                    secret=moto_s3.secret, permissions="public-read", storage_class="STANDARD_IA",
                    cache_control="public, max-age=86400")
    [landed] = destinations.put([out], target, settings=settings)
    assert landed.url == f"s3://127.0.0.1:{moto_s3.port}/{bucket}/out/video.mp4"
    assert landed.storage == {"type": "s3", "host": f"127.0.0.1:{moto_s3.port}", "bucket": bucket,
                              "key": "out/video.mp4"}
    s3 = moto_s3.client()
    obj = s3.get_object(Bucket=bucket, Key="out/video.mp4")
    assert obj["Body"].read() == out.path.read_bytes()
    assert obj["ContentType"] == "video/mp4"
    assert obj["CacheControl"] == "public, max-age=86400"
    assert obj["StorageClass"] == "STANDARD_IA"
    assert "-" in obj["ETag"]  # a multipart upload
    grants = s3.get_object_acl(Bucket=bucket, Key="out/video.mp4")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)


def test_folder_of_many_files_private_by_default(moto_s3, bucket, settings, tmp_path):
    files = [_file(tmp_path, n, 1000 + i) for i, n in enumerate(
        ["master.m3u8", "720p/index.m3u8", "720p/seg_0.ts", "720p/seg_1.ts", "360p/seg_0.ts"])]
    target = Target(url=f"s3://127.0.0.1:{moto_s3.port}/{bucket}/hls/", key=moto_s3.key, secret=moto_s3.secret)
    landed = destinations.put(files, target, settings=settings)
    assert [f.name for f in landed] == [f.name for f in files]
    s3 = moto_s3.client()
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="hls/")["Contents"]}
    assert listed == {f"hls/{f.name}": f.path.stat().st_size for f in files}
    head = s3.head_object(Bucket=bucket, Key="hls/720p/seg_1.ts")
    assert head["ContentType"] == "video/mp2t"
    assert s3.head_object(Bucket=bucket, Key="hls/master.m3u8")["ContentType"] == "application/vnd.apple.mpegurl"
    grants = s3.get_object_acl(Bucket=bucket, Key="hls/master.m3u8")["Grants"]
    assert not any("AllUsers" in g["Grantee"].get("URI", "") for g in grants)


def test_fan_out_to_two_destinations(moto_s3, bucket, settings, tmp_path):
    out = _file(tmp_path, "a.mp4", 2000)
    targets = [Target(url=f"s3://127.0.0.1:{moto_s3.port}/{bucket}/one/a.mp4", key=moto_s3.key, secret=moto_s3.secret),
               Target(url=f"b2://127.0.0.1:{moto_s3.port}/{bucket}/two/", key=moto_s3.key, secret=moto_s3.secret)]
    landed = destinations.put_all([out], targets, settings=settings)
    assert [each[0].storage["key"] for each in landed] == ["one/a.mp4", "two/a.mp4"]
    assert landed[1][0].storage["type"] == "b2"
    s3 = moto_s3.client()
    for key in ("one/a.mp4", "two/a.mp4"):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == out.path.read_bytes()


@pytest.mark.parametrize("case", ["wrong-secret", "wrong-key", "missing-bucket"])
def test_refusals_are_clear_and_carry_no_secret(moto_s3, bucket, settings, tmp_path, case):
    out = _file(tmp_path, "a.mp4", 100)
    secret = moto_s3.secret if case != "wrong-secret" else "WRONG-secret-" + secrets.token_hex(8)
    key = moto_s3.key if case != "wrong-key" else "AKIAWRONGKEY0000"
    where = bucket if case != "missing-bucket" else "no-such-bucket"
    with pytest.raises(StorageError) as err:
        destinations.put([out], Target(url=f"s3://127.0.0.1:{moto_s3.port}/{where}/a.mp4", key=key, secret=secret),
                         settings=settings)
    expected = {"wrong-secret": "wrong secret", "wrong-key": "wrong key", "missing-bucket": "bucket does not exist"}
    assert expected[case] in err.value.message
    assert secret not in err.value.message and moto_s3.secret not in err.value.message
    assert "a.mp4" in err.value.message


def test_s3_source_with_credentials_in_the_url(moto_s3, bucket, settings, tmp_path):
    body = secrets.token_bytes(11 * 1024**2)
    moto_s3.client().put_object(Bucket=bucket, Key="in/source video.mp4", Body=body)
    secret = moto_s3.secret.replace("/", "%2F").replace("+", "%2B")
    url = f"s3://{moto_s3.key}:{secret}@127.0.0.1:{moto_s3.port}/{bucket}/in/source%20video.mp4"
    sources.vet(url, settings=settings)
    result = sources.fetch(url, tmp_path / "source", settings=settings)
    assert result.size == len(body) and (tmp_path / "source").read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_presigned_url_is_an_http_source(moto_open, settings, tmp_path):
    s3 = moto_open.client()
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="p.mp4", Body=b"presigned-bytes")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "p.mp4"}, ExpiresIn=300)
    assert "Signature=" in url
    result = sources.fetch(url, tmp_path / "source", settings=settings)
    assert (tmp_path / "source").read_bytes() == b"presigned-bytes" and result.size == 15


def test_s3_source_errors(moto_s3, bucket, settings, tmp_path):
    moto_s3.client().put_object(Bucket=bucket, Key="x.mp4", Body=b"0123456789")
    good = f"{moto_s3.key}:{moto_s3.secret.replace('/', '%2F').replace('+', '%2B')}"
    with pytest.raises(SourceError, match="object does not exist|not found"):
        sources.fetch(f"s3://{good}@127.0.0.1:{moto_s3.port}/{bucket}/nope.mp4", tmp_path / "s", settings=settings)
    with pytest.raises(SourceError, match="wrong secret|wrong key or secret") as err:
        sources.fetch(f"s3://{moto_s3.key}:bad-secret-xyz@127.0.0.1:{moto_s3.port}/{bucket}/x.mp4",
                      tmp_path / "s", settings=settings)
    assert "bad-secret-xyz" not in err.value.message
    small = settings.model_copy(update={"max_source_bytes": 5})
    with pytest.raises(SourceTooLarge):
        sources.fetch(f"s3://{good}@127.0.0.1:{moto_s3.port}/{bucket}/x.mp4", tmp_path / "s", settings=small)
    assert list(tmp_path.glob("s*")) == []


def test_ssrf_guard_on_the_endpoint(settings, tmp_path):
    closed = settings.model_copy(update={"allow_private_networks": False})
    with pytest.raises(UrlRefused, match="private networks are not allowed"):
        sources.fetch("s3://127.0.0.1:9/b/k.mp4", tmp_path / "s", settings=closed)
    with pytest.raises(StorageError, match="never allowed"):
        destinations.put([_file(tmp_path, "a.mp4", 1)], Target(url="s3://169.254.169.254/b/a.mp4"), settings=settings)


def test_a_failed_multipart_upload_leaves_nothing_under_the_final_name(moto_s3, bucket, settings, tmp_path,
                                                                       monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from vidmill.net import s3 as s3net

    real_client = s3net.client
    parts = []

    def failing_client(endpoint, settings_):
        client = real_client(endpoint, settings_)

        def on_part(**kwargs):
            parts.append(1)
            if len(parts) == 2:
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1")  # the network dies mid-upload

        client.meta.events.register("before-call.s3.UploadPart", on_part)
        return client

    monkeypatch.setattr(s3net, "client", failing_client)
    out = _file(tmp_path, "big.mp4", 11 * 1024**2)
    target = Target(url=f"s3://127.0.0.1:{moto_s3.port}/{bucket}/big.mp4", key=moto_s3.key, secret=moto_s3.secret)
    with pytest.raises(StorageError, match="cannot connect"):
        destinations.put([out], target, settings=settings)
    s3 = moto_s3.client()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted, not left pending
