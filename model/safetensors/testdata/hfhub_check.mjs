// Parses a local checkpoint directory with Hugging Face's own safetensors
// header parser (npm @huggingface/hub, parseSafetensorsMetadata), serving
// the files through a mock fetch that answers Range requests. Used by
// TestHFHubParser when GOTRAIN_HFHUB_DIR names a directory where
// `npm install --ignore-scripts @huggingface/hub@2` was run. Never needed by CI.
//
// Usage: node hfhub_check.mjs HUB_DIR CHECKPOINT_DIR (model.safetensors|model.safetensors.index.json)
// Prints one line per tensor: file <TAB> name <TAB> dtype <TAB> shape <TAB> offsets.
import fs from "node:fs";
import path from "node:path";
const [hubDir, dir, file] = process.argv.slice(2);
const { parseSafetensorsMetadata } = await import(path.resolve(hubDir, "node_modules/@huggingface/hub/dist/index.mjs"));
const mockFetch = async (input, init = {}) => {
  const r = await serve(input, init);
  Object.defineProperty(r, "url", { value: String(typeof input === "string" ? input : input.url ?? input) });
  return r;
};
const serve = async (input, init = {}) => {
  const url = new URL(typeof input === "string" ? input : (input.url ?? String(input)));
  const m = url.pathname.match(/\/resolve\/[^/]+\/(.+)$/);
  const method = (init.method || "GET").toUpperCase();
  if (process.env.DEBUG) console.error(method, url.pathname, JSON.stringify(init.headers || {}));
  if (!m || !fs.existsSync(path.join(dir, decodeURIComponent(m[1])))) return new Response("not found", { status: 404 });
  const buf = fs.readFileSync(path.join(dir, decodeURIComponent(m[1])));
  const hdrs = new Headers(init.headers || {});
  const range = hdrs.get("range") || hdrs.get("Range");
  const base = { "content-type": "application/octet-stream", etag: '"x"', "accept-ranges": "bytes" };
  if (method === "HEAD") return new Response(null, { status: 200, headers: { ...base, "content-length": String(buf.length) } });
  if (range) {
    const [, a, b] = range.match(/bytes=(\d+)-(\d*)/);
    const s = Number(a), e = b === "" ? buf.length - 1 : Math.min(Number(b), buf.length - 1);
    return new Response(buf.subarray(s, e + 1), { status: 206, headers: { ...base, "content-range": `bytes ${s}-${e}/${buf.length}`, "content-length": String(e - s + 1) } });
  }
  return new Response(buf, { status: 200, headers: { ...base, "content-length": String(buf.length) } });
};
const r = await parseSafetensorsMetadata({ repo: "local/model", path: file, computeParametersCount: true, fetch: mockFetch });
const headers = r.sharded ? r.headers : { [file]: r.header };
for (const [f, h] of Object.entries(headers)) {
  for (const [name, info] of Object.entries(h)) {
    if (name === "__metadata__") console.log([f, name, JSON.stringify(info)].join("\t"));
    else console.log([f, name, info.dtype, JSON.stringify(info.shape), JSON.stringify(info.data_offsets)].join("\t"));
  }
}
