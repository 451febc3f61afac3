// Upload a file with tus-js-client (the uploader browsers use) and report what happened as one JSON line.
//
//   node upload.mjs new <endpoint> <file> <filename>   create an upload and send the file in one PATCH
//   node upload.mjs resume <upload-url> <file>         resume an upload made earlier (as after a page reload)
//
// No retries: a broken connection ends this process with {"ok": false, ...}, and a later `resume` run picks
// the upload up from the offset the server reports. Every PATCH's Upload-Offset is reported, so the caller
// can see where the resume started.
import fs from "node:fs";
import * as tus from "tus-js-client";

const [mode, target, file, filename] = process.argv.slice(2);
const data = fs.readFileSync(file);
const patchOffsets = [];
let url = mode === "resume" ? target : null;

const options = {
  retryDelays: [],
  metadata: mode === "new" ? { filename } : {},  // only filename, like browsers: the server adds filetype
  onBeforeRequest(req) {
    if (req.getMethod() === "PATCH") patchOffsets.push(Number(req.getHeader("Upload-Offset")));
  },
  onUploadUrlAvailable() {
    url = upload.url;
  },
  onError(error) {
    console.log(JSON.stringify({ ok: false, url, patchOffsets, error: String(error.message).slice(0, 300) }));
    process.exit(3);
  },
  onSuccess() {
    console.log(JSON.stringify({ ok: true, url: upload.url, patchOffsets }));
    process.exit(0);
  },
};
if (mode === "new") options.endpoint = target;
else options.uploadUrl = target;

const upload = new tus.Upload(data, options);
upload.start();
