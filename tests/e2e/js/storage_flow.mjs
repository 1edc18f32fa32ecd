// supabase-js against a real `voicegate up`, as an app would use it: a client made with the URL and the anon key,
// acting as a signed-in user (their access token), uploads to the signed URL `/api/clone/upload-url` handed out,
// lists the folder, signs URLs and downloads. Reads its inputs as JSON on stdin and writes what each step
// answered as JSON on stdout; tests/e2e/test_supabase_clients.py asserts on it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createClient } from "@supabase/supabase-js";
// Node 20 has no WebSocket of its own, which supabase-js's realtime client needs as it is made (Node 22 has one).
import ws from "ws";

const input = JSON.parse(readFileSync(0, "utf8"));
const supabase = createClient(input.url, input.anonKey, {
  accessToken: async () => input.userToken,
  realtime: { transport: ws },
});
const bucket = supabase.storage.from(input.bucket);
const outcome = (error) => (error ? { message: error.message, status: error.status, statusCode: error.statusCode } : null);

const audio = readFileSync(input.file);
const uploaded = await bucket.uploadToSignedUrl(input.path, input.uploadToken, audio, { contentType: input.contentType });
const listed = await bucket.list(input.folder);
const othersListed = await bucket.list(input.othersFolder);
const signed = await bucket.createSignedUrls([input.path, input.othersPath], 60);
const downloaded = await bucket.download(input.path);
const bytes = downloaded.data ? Buffer.from(await downloaded.data.arrayBuffer()) : null;
const viaSignedUrl = signed.data ? await fetch(signed.data[0].signedUrl) : null;
const signedBytes = viaSignedUrl ? Buffer.from(await viaSignedUrl.arrayBuffer()) : null;
const sha256 = (data) => (data ? createHash("sha256").update(data).digest("hex") : null);

process.stdout.write(
  JSON.stringify({
    upload: { data: uploaded.data, error: outcome(uploaded.error) },
    list: { names: listed.data && listed.data.map((entry) => entry.name), error: outcome(listed.error) },
    othersList: { names: othersListed.data && othersListed.data.map((entry) => entry.name), error: outcome(othersListed.error) },
    signed: {
      data: signed.data && signed.data.map(({ path, error, signedUrl }) => ({ path, error, signed: signedUrl !== null })),
      error: outcome(signed.error),
    },
    download: { sha256: sha256(bytes), error: outcome(downloaded.error) },
    signedDownload: { status: viaSignedUrl && viaSignedUrl.status, sha256: sha256(signedBytes) },
  }),
);
