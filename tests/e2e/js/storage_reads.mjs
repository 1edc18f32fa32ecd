// supabase-js reading a user's folder against a real `voicegate up`: `list` with its options, `listV2` page by page
// and one level at a time, `info` and `exists`, as the folder's owner and as another user. The service key writes
// the objects first (users cannot write there). Reads its inputs as JSON on stdin and writes what each call answered
// as JSON on stdout; tests/e2e/test_supabase_clients.py asserts on it.
import { readFileSync } from "node:fs";
import { createClient } from "@supabase/supabase-js";
import ws from "ws";

const input = JSON.parse(readFileSync(0, "utf8"));
const make = (token) =>
  createClient(input.url, input.anonKey, { accessToken: async () => token, realtime: { transport: ws } }).storage.from(
    input.bucket,
  );
const owner = make(input.userToken);
const other = make(input.otherToken);
const admin = make(input.serviceKey);
const outcome = (error) => (error ? { message: error.message, status: error.status, statusCode: error.statusCode } : null);
const said = ({ data, error }) => ({ data, error: outcome(error) });
const names = ({ data, error }) => ({ names: data && data.map((entry) => entry.name), error: outcome(error) });
const page = ({ data, error }) => ({
  hasNext: data && data.hasNext,
  cursor: data ? typeof data.nextCursor : null,
  folders: data && data.folders.map((folder) => folder.name),
  objects: data && data.objects.map((object) => object.name),
  error: outcome(error),
});

const folder = input.folder;
const bytes = readFileSync(input.file).subarray(0, 1000);
const uploads = [];
for (const name of input.names) {
  const { error } = await admin.upload(`${folder}/${name}`, bytes, { contentType: "audio/wav" });
  uploads.push(outcome(error));
}

const firstPage = await owner.listV2({ prefix: `${folder}/`, limit: 2 });
const cursor = firstPage.data && firstPage.data.nextCursor;
const info = await owner.info(`${folder}/a.wav`);
// `exists` reads only HEAD's status; what its headers say is read here.
const head = await fetch(`${input.url}/storage/v1/object/authenticated/${input.bucket}/${folder}/a.wav`, {
  method: "HEAD",
  headers: { Authorization: `Bearer ${input.userToken}`, apikey: input.anonKey },
});
process.stdout.write(
  JSON.stringify({
    uploads,
    list: names(await owner.list(folder)),
    listSearch: names(await owner.list(folder, { search: "b" })),
    listPaged: names(await owner.list(folder, { limit: 2, offset: 1, sortBy: { column: "name", order: "desc" } })),
    listOther: names(await other.list(folder)),
    v2First: page(firstPage),
    v2Next: page(await owner.listV2({ prefix: `${folder}/`, limit: 2, cursor })),
    v2Level: page(await owner.listV2({ prefix: `${folder}/`, with_delimiter: true })),
    v2Desc: page(await owner.listV2({ prefix: `${folder}/`, sortBy: { column: "name", order: "desc" } })),
    v2Other: page(await other.listV2({ prefix: `${folder}/` })),
    // Not a continuation token Storage made: "nope" in base64.
    v2BadCursor: page(await owner.listV2({ prefix: `${folder}/`, cursor: "bm9wZQ==" })),
    info: {
      data: info.data && {
        name: info.data.name,
        bucketId: info.data.bucketId,
        size: info.data.size,
        contentType: info.data.contentType,
      },
      error: outcome(info.error),
    },
    infoOther: said(await other.info(`${folder}/a.wav`)),
    head: { status: head.status, type: head.headers.get("content-type"), length: head.headers.get("content-length") },
    exists: said(await owner.exists(`${folder}/a.wav`)),
    existsMissing: said(await owner.exists(`${folder}/none.wav`)),
    existsOther: said(await other.exists(`${folder}/a.wav`)),
  }),
);
