// The official openai package pointed at `gotrain serve`: list the models,
// chat (streamed, with log-probabilities), and predict SocSci210 rows through
// the engine's own /v1/predict endpoint with the same client.
//
//   npm install            (in this directory)
//   gotrain serve --base MODEL [--adapter NAME=DIR] &
//   node client.mjs [rows.jsonl]
//
// Environment: GOTRAIN_URL (default http://127.0.0.1:8080), GOTRAIN_MODEL
// (default: the first model listed), GOTRAIN_API_KEY (if the server has one).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";

const url = (process.env.GOTRAIN_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const client = new OpenAI({ baseURL: url + "/v1", apiKey: process.env.GOTRAIN_API_KEY || "none" });

const here = path.dirname(fileURLToPath(import.meta.url));
const rowsPath = process.argv[2] ?? path.join(here, "..", "rows.jsonl");
const rows = fs.readFileSync(rowsPath, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

const models = await client.models.list();
const model = process.env.GOTRAIN_MODEL ?? models.data[0].id;
console.log("models:", models.data.map((m) => m.id).join(", "));

// /v1/predict is not part of the OpenAI API; the client's generic post reaches it
const out = await client.post("/predict", { body: { model, rows } });
for (const row of out.rows) {
  const dist = (row.options ?? []).map((o, i) => `${o}: ${row.probs[i].toFixed(3)}`).join(", ");
  console.log(`${row.sample_id}\tprediction ${row.prediction}\t${dist}`);
}

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "In one word: is a $15 parking fee a lot?" }],
  max_tokens: 8,
  temperature: 0,
  logprobs: true,
  top_logprobs: 2,
  stream: true,
});
let text = "";
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
}
console.log("chat:", JSON.stringify(text));
