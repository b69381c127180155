// A Node service capturing through capture-service, as a polyglot caller would: @grpc/grpc-js
// with the API loaded from proto/ (the include root) by @grpc/proto-loader.
//
// Usage: node capture_client.mjs TARGET API_KEY AUTHORIZATION_ID
// Captures twice, reads one back, pages through ListCaptures one capture a page, watches the
// changes and resumes the watch from a cursor, and reads the google.rpc.BadRequest of a bad
// request from grpc-status-details-bin. Prints one JSON object; tests/clients/node.rs checks it.

import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const [target, apiKey, authorizationId] = process.argv.slice(2);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../proto");

const definition = protoLoader.loadSync("capture/v1/capture_service.proto", {
  includeDirs: [root],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const api = grpc.loadPackageDefinition(definition).capture.v1;
const client = new api.CaptureService(target, grpc.credentials.createInsecure());
const metadata = () => {
  const m = new grpc.Metadata();
  m.set("authorization", `Bearer ${apiKey}`);
  return m;
};
const call = (method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata(), (error, answer) => (error ? reject(error) : resolve(answer))),
  );

// google.rpc.Status and BadRequest as googleapis defines them (google/rpc/status.proto,
// google/rpc/error_details.proto): the wire format of grpc-status-details-bin.
const rpc = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
`, { keepCase: true }).root;

/** The first `count` changes a watch from `since` sends; the stream is then cancelled. */
function watch(since, count) {
  return new Promise((resolve, reject) => {
    const changes = [];
    const stream = client.WatchCaptures({ since }, metadata());
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`only ${changes.length} of ${count} changes within 10 s`));
    }, 10_000);
    stream.on("data", (change) => {
      changes.push(change);
      if (changes.length === count) {
        clearTimeout(timer);
        stream.cancel();
        resolve(changes);
      }
    });
    stream.on("error", (error) => {
      if (error.code !== grpc.status.CANCELLED) {
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

const seen = {};
const capture = (value, requestId) =>
  call("Capture", {
    provider: "PROVIDER_PAYPAL",
    authorization_id: authorizationId,
    amount: { currency_code: "USD", value },
    request_id: requestId,
    metadata: { caller: "node" },
  });

const first = (await capture("10.00", "node-1")).capture;
const second = (await capture("20.00", "node-2")).capture;
seen.statuses = [first.status, second.status];
seen.captured = [first.captured_amount.currency_code, first.captured_amount.value];

const got = (await call("GetCapture", { id: first.id })).capture;
assert.deepEqual(got, first);
seen.get_matches = true;

// One capture a page: the token leads to the next, and the last page has none.
const pages = [];
let token = "";
do {
  const page = await call("ListCaptures", { page_size: 1, page_token: token });
  pages.push(page.captures.map((c) => c.id));
  token = page.next_page_token;
} while (token && pages.length < 10);
seen.pages = pages;

// The trail replayed after its first change (the first capture's PROCESSING), then the same
// watch resumed from a cursor it sent.
const replayed = await watch("1", 3);
seen.watched = replayed.map((c) => [c.capture_id, c.status]);
const resumed = await watch(replayed[0].cursor, 2);
seen.resumed_after = replayed[0].cursor;
seen.resumed = resumed.map((c) => c.cursor);

// A bad request: INVALID_ARGUMENT and a google.rpc.BadRequest naming the field.
try {
  await call("Capture", {
    provider: "PROVIDER_PAYPAL",
    authorization_id: authorizationId,
    amount: { currency_code: "USD", value: "1.001" },
    request_id: "node-3",
  });
  seen.bad_request = "accepted";
} catch (error) {
  const details = error.metadata.get("grpc-status-details-bin")[0];
  const status = rpc.lookupType("google.rpc.Status").decode(details);
  const violations = [];
  for (const detail of status.details) {
    if (detail.type_url.endsWith("/google.rpc.BadRequest")) {
      const badRequest = rpc.lookupType("google.rpc.BadRequest").decode(detail.value);
      for (const v of badRequest.field_violations) violations.push([v.field, v.description]);
    }
  }
  seen.bad_request = { code: grpc.status[error.code], violations };
}

// The authorization as a whole: what its captures add up to, then the rest released.
const key = { provider: "PROVIDER_PAYPAL", authorization_id: authorizationId };
const before = (await call("GetAuthorization", key)).authorization;
seen.authorization_before = [before.status, before.captured_amount.value, before.captures.length];
const released = await call("ReleaseAuthorization", {
  ...key,
  authorized_amount: { currency_code: "USD", value: "100.00" },
  request_id: "node-release",
});
seen.release = [
  released.release.status,
  released.release.released_by,
  released.authorization.status,
  released.authorization.released_amount.value,
];

client.close();
console.log(JSON.stringify(seen));
