"""A real browser uploads: tus-js-client 4.3.1 in headless Chromium, on a page of another origin than vidmill
(so every request goes through CORS), stopped halfway and resumed the way a web page does after a reload
(``findPreviousUploads`` + ``resumeFromPreviousUpload``, from the fingerprint kept in localStorage)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil

import httpx
import pytest

from tests.servers import ROOT, StaticServer

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TUS_JS = ROOT / "tests" / "tus" / "node_modules" / "tus-js-client" / "dist" / "tus.min.js"

START = """async ([endpoint, mediaUrl]) => {
  const blob = await (await fetch(mediaUrl)).blob();
  window.file = new File([blob], "trailer.mp4", {type: "video/mp4"});
  window.patches = [];
  return await new Promise((resolve, reject) => {
    let stopped = false;
    const upload = new tus.Upload(window.file, {
      endpoint, chunkSize: 512 * 1024, retryDelays: [],
      metadata: {filename: window.file.name, filetype: window.file.type},
      onBeforeRequest(req) { if (req.getMethod() === "PATCH") window.patches.push(+req.getHeader("Upload-Offset")); },
      onProgress(sent, total) {
        if (!stopped && sent >= total / 2) { stopped = true; upload.abort().then(() => resolve(upload.url)); }
      },
      onError: (e) => reject(new Error("upload failed: " + e)),
      onSuccess: () => reject(new Error("finished before it could be stopped")),
    });
    upload.start();
  });
}"""

RESUME = """async (endpoint) => {
  window.patches = [];
  return await new Promise((resolve, reject) => {
    const upload = new tus.Upload(window.file, {
      endpoint, chunkSize: 512 * 1024, retryDelays: [],
      metadata: {filename: window.file.name, filetype: window.file.type},
      onBeforeRequest(req) { if (req.getMethod() === "PATCH") window.patches.push(+req.getHeader("Upload-Offset")); },
      onError: (e) => reject(new Error("resume failed: " + e)),
      onSuccess: () => resolve({url: upload.url, patches: window.patches}),
    });
    upload.findPreviousUploads().then((previous) => {
      if (!previous.length) return reject(new Error("no previous upload in localStorage"));
      upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    });
  });
}"""


@pytest.fixture
def page(tmp_path, media):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    if not TUS_JS.is_file():
        pytest.fail("tus-js-client is not installed: `make test` runs `npm ci` in tests/tus")
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(TUS_JS, site / "tus.min.js")
    (site / "index.html").write_text('<!doctype html><meta charset="utf-8"><script src="tus.min.js"></script>')
    (site / "trailer.mp4").symlink_to(media / "bbb_trailer_720p_55s_mp3.mp4")
    with StaticServer(site) as origin, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            tab = browser.new_page()
            tab.goto(f"{origin.url}/index.html")
            yield tab, origin
        finally:
            browser.close()


def test_browser_upload_stopped_halfway_resumes_from_the_servers_offset(server, page, media):
    tab, origin = page
    assert origin.url != server.url  # another origin: CORS applies to every request
    from qencode3.client import Client

    task = Client(server.api_key, api_url=server.url + "/").create_task()
    endpoint = f"{task.upload_url}/{task.task_token}"
    source = media / "bbb_trailer_720p_55s_mp3.mp4"
    size = source.stat().st_size

    url = tab.evaluate(START, [endpoint, f"{origin.url}/trailer.mp4"])
    assert url.startswith(endpoint + "/")
    head = httpx.head(url, headers={"Tus-Resumable": "1.0.0"})
    offset = int(head.headers["upload-offset"])
    assert 0 < offset < size
    meta = dict(item.split(" ") for item in head.headers["upload-metadata"].split(", "))
    assert base64.b64decode(meta["filename"]) == b"trailer.mp4" and base64.b64decode(meta["filetype"]) == b"video/mp4"

    done = tab.evaluate(RESUME, endpoint)
    assert done["url"] == url
    assert done["patches"][0] == offset  # resumed where the server stood, not from 0
    data = next(server.data_dir.glob(f"uploads/*/{url.rsplit('/', 1)[1]}"))
    assert hashlib.sha256(data.read_bytes()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
