// supabase-js's bucket calls and a public object's info and HEAD against a real `voicegate up`, as a signed-in user
// (refused as Supabase Storage refuses one) and with the service key (served). Reads its inputs as JSON on stdin and
// writes what each call answered as JSON on stdout; tests/e2e/test_supabase_clients.py asserts on it.
import { readFileSync } from "node:fs";
import { createClient } from "@supabase/supabase-js";
import ws from "ws";

const input = JSON.parse(readFileSync(0, "utf8"));
const make = (token) =>
  createClient(input.url, input.anonKey, { accessToken: async () => token, realtime: { transport: ws } });
const user = make(input.userToken).storage;
const admin = make(input.serviceKey).storage;
const outcome = (error) => (error ? { message: error.message, status: error.status, statusCode: error.statusCode } : null);
const said = ({ data, error }) => ({ data, error: outcome(error) });

const bucket = input.newBucket;
const answers = {
  userGet: said(await user.getBucket(input.bucket)),
  userCreate: said(await user.createBucket(bucket)),
  userUpdate: said(await user.updateBucket(input.bucket, { public: true })),
  userEmpty: said(await user.emptyBucket(input.bucket)),
  userDelete: said(await user.deleteBucket(input.bucket)),
  create: said(await admin.createBucket(bucket, { public: true, fileSizeLimit: "1MB", allowedMimeTypes: ["audio/wav"] })),
};
const uploaded = await admin.from(bucket).upload("a/x.wav", readFileSync(input.file).subarray(0, 1000), { contentType: "audio/wav" });
answers.upload = { error: outcome(uploaded.error) };
const anonymous = createClient(input.url, input.anonKey, { realtime: { transport: ws } }).storage.from(bucket);
const info = await anonymous.info("a/x.wav");
answers.info = { name: info.data && info.data.name, size: info.data && info.data.size, error: outcome(info.error) };
const head = await fetch(anonymous.getPublicUrl("a/x.wav").data.publicUrl, { method: "HEAD" });
answers.head = { status: head.status, type: head.headers.get("content-type"), length: head.headers.get("content-length") };
answers.get = said(await admin.getBucket(bucket));
answers.update = said(await admin.updateBucket(bucket, { public: false }));
answers.deleteFull = said(await admin.deleteBucket(bucket));
answers.empty = said(await admin.emptyBucket(bucket));
answers.delete = said(await admin.deleteBucket(bucket));
answers.gone = said(await admin.getBucket(bucket));
process.stdout.write(JSON.stringify(answers));
