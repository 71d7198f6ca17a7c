// bench.mjs measures transformers.js encode speed (tokens/s, one thread) on
// the texts of tokenize's BenchmarkEncodeProse and BenchmarkEncodeSocSci.
//
//   taskset -c 0 node bench.mjs /work/shared ../../tokenize/testdata
import { PreTrainedTokenizer } from '@huggingface/transformers';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';

const shared = process.argv[2] || '/work/shared';
const testdata = process.argv[3] || '../../tokenize/testdata';

function load(dir) {
  const tj = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers', dir, 'tokenizer.json'), 'utf8'));
  const tc = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers', dir, 'tokenizer_config.json'), 'utf8'));
  return new PreTrainedTokenizer(tj, tc);
}

const prose = [fs.readFileSync(path.join(testdata, 'prose.txt'), 'utf8')];
const socsci = zlib.gunzipSync(fs.readFileSync(path.join(testdata, 'qwen2.5.jsonl.gz'))).toString('utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l).text)
  .filter((t) => t.includes('Demographics:') || t.startsWith('Response:'));

function bench(tok, texts, seconds = 5) {
  for (const t of texts) tok.encode(t, { add_special_tokens: false }); // warm caches
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  do {
    for (const t of texts) tokens += tok.encode(t, { add_special_tokens: false }).length;
    el = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (el < seconds);
  return tokens / el;
}

for (const name of ['qwen2.5', 'llama3']) {
  const tok = load(name);
  console.log(`${name} prose  ${(bench(tok, prose) / 1e6).toFixed(2)} M tokens/s`);
  console.log(`${name} socsci ${(bench(tok, socsci) / 1e6).toFixed(2)} M tokens/s`);
}
