// A bot on the whatsapp-api-js SDK (npm) as wagate's forwarding target (meta mode).
// The SDK's own node:http middleware checks every request's X-Hub-Signature-256
// with the app secret, over the body it re-escapes first (every character past
// `~` as \uXXXX), and calls the bot's handlers.
//
// Usage: node bot.mjs <app secret> [port]   (port: argv, else $PORT, else 0)
// Prints "port N" once listening on 127.0.0.1. GET /counts answers what it saw:
// the status of each answer, the message ids of every body the SDK accepted, the
// messages and statuses its handlers were given. Driven by
// tests/it/forward_whatsapp_api_js.rs, run in .ci/run.

import { createServer } from "node:http";
import { Readable } from "node:stream";
import { WhatsAppAPI } from "whatsapp-api-js/middleware/node-http";

const secret = process.argv[2];
if (!secret) {
  console.error("usage: node bot.mjs <app secret> [port]");
  process.exit(2);
}
const port = Number(process.argv[3] ?? process.env.PORT ?? 0);

const answers = {};
const accepted = {}; // message id -> times in a body the SDK accepted
const messages = {}; // message id -> times given to on.message
const statuses = {}; // "id status" -> times given to on.status

const bump = (counter, key) => {
  counter[key] = (counter[key] ?? 0) + 1;
};

const Whatsapp = new WhatsAppAPI({
  token: "unused",
  appSecret: secret,
  webhookVerifyToken: "unused-verify-token",
  v: "v23.0",
});

Whatsapp.on.message = ({ message }) => bump(messages, message.id);
Whatsapp.on.status = ({ id, status }) => bump(statuses, `${id} ${status}`);

const messageIds = (body) => {
  const ids = [];
  for (const entry of body.entry ?? []) {
    for (const change of entry.changes ?? []) {
      for (const m of change.value?.messages ?? []) ids.push(m.id);
    }
  }
  return ids;
};

const server = createServer(async (req, res) => {
  if (req.method === "GET" && req.url === "/counts") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ answers, accepted, messages, statuses }));
    return;
  }
  if (req.method !== "POST") {
    res.statusCode = 405;
    res.end();
    return;
  }
  // The SDK reads the request as it came; a copy is kept to count what it accepted.
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks);
  const copy = Object.assign(Readable.from([raw]), { headers: req.headers });
  const status = await Whatsapp.handle_post(copy);
  bump(answers, status);
  if (status === 200) {
    for (const id of messageIds(JSON.parse(raw.toString("utf-8")))) bump(accepted, id);
  }
  res.statusCode = status;
  res.end();
});

server.listen(port, "127.0.0.1", () => {
  console.log(`port ${server.address().port}`);
});
