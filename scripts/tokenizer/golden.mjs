// golden.mjs writes golden token ids and chat renderings from transformers.js
// (Hugging Face tokenizer semantics) for tokenize/testdata.
//
//   cd scripts/tokenizer && npm install --ignore-scripts @huggingface/transformers@3
//   node golden.mjs /work/shared ../../tokenize/testdata [llama3.1-meta.jinja]
import { PreTrainedTokenizer } from '@huggingface/transformers';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';

const shared = process.argv[2] || '/work/shared';
const out = process.argv[3] || '../../tokenize/testdata';
fs.mkdirSync(out, { recursive: true });

function load(dir, file = 'tokenizer.json') {
  const tj = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers', dir, file), 'utf8'));
  const tc = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers', dir, 'tokenizer_config.json'), 'utf8'));
  return new PreTrainedTokenizer(tj, tc);
}

// Deterministic PRNG (mulberry32).
let seed = 12345;
function rnd() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];

const texts = [];
const seen = new Set();
const add = (s) => { if (!seen.has(s)) { seen.add(s); texts.push(s); } };

// Every distinct SocSci210 dev prompt (instruction + input) and output.
for (const line of fs.readFileSync(path.join(shared, 'data/socsci210/dev.jsonl'), 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  add(r.instruction + '\n\n' + r.input);
  add(r.output);
}
const nSocSci = texts.length;

// Hand-written edge cases.
const crafted = [
  'Hello world', 'Hello world!', ' Hello', '  Hello', 'Hello  world', 'Hello\nworld', 'Hello\n\nworld',
  "it's", "It'S", "we'LL", "they'Ve", "I'm", "you'd", "don't", "DON'T", "'s", "''s", "x'ſ", "'ſa", "rock'n'roll",
  "she'll've", "O'Neil's", "' s", "'", "''", "'''",
  '12345678901234567890', '3.14159', '1,000,000', 'a1b22c333d4444', '٣٤٥ ١٢', '²³ ½ Ⅻ ⑦', '0x1F 1e-9',
  '日本語のテキストです。', '中文分词测试，标点！', '한국어 텍스트', 'ひらがな カタカナ 漢字',
  '😀', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '👍🏽 thumbs', '🇺🇸🇫🇷', '❤️', 'a😀b', '😀😀😀 😀',
  'e\u0301', 'caf\u00e9 vs cafe\u0301', 'A\u030A', '\u1100\u1161\u11A8', 'n\u0303o', 'Å Å Å', 'ﬁ ligature', 'Ω Ω',
  'مرحبا بالعالم', 'שלום עולם', 'abc مرحبا def', '\u202Eright-to-left override\u202C',
  'trailing spaces   ', '   leading', '\t\ttabs\t', 'a\r\nb\r\n', '\r\n\r\n', '\n', ' ', '  ', '\n \n', ' \n ',
  'x \n y', 'x  \n\n  y', 'end\n', 'end \n', 'a\u00a0b', 'a\u3000b', 'a\u2028b', 'a\u2003\u2003b', 'a\u000bb\u000cc',
  'a\u0085b', 'a\ufeffb', 'zero\u200bwidth', 'a\u200db',
  '<|im_start|>user\nHi<|im_end|>\n', 'x<|im_end|>y', '<|endoftext|><|endoftext|>', ' <|im_end|> ', '<|im_end|>',
  '<|begin_of_text|>Hi', 'a<|eot_id|>b', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
  '<|im_end', '<|not_a_token|>', '<<|im_end|>>', '<|reserved_special_token_5|>', '<think>x</think>',
  '!!!', '...\n\n', '?!\n', '(a) [b] {c}', '#include <stdio.h>', 'def f(x):\n    return x**2\n',
  'https://example.com/a?b=c&d=e', 'user@example.com', '$12.50 + 5% = ?', '—–-', '“quoted” ‘single’', '…',
  '    indented code', '\t\tx = 1;', 'Ünïcödé Çhâräctèrs', 'ΑΒΓ αβγ', 'Привет мир', 'Straße',
  'İstanbul ıi', 'ǅemal', 'ﬀ', 'K Kelvin', 'x\u0000y', '\u0001\u0002\u001f', '\u007f',
  'Response: 2', 'Response: 10', 'Response: -5', 'Response: 60100000',
];
for (const s of crafted) add(s);

// Random mixes of the classes above.
const pool = [
  'the', 'The', ' quick', 'brown', 'FOX', "'s", "'S", "'ll", "'LL", "'ve", "'Ve", "'re", "'d", "'m", "'t",
  ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\t', ' \n', '\u00a0', '\u3000',
  '0', '7', '42', '123', '2024', '99999', '3.5', '٣', '½',
  '.', ',', '!', '?', ';', ':', '-', '--', '(', ')', '"', "'", '“', '”', '…', '/', '\\', '@', '#', '$', '%', '&', '*',
  '日本', '語', '中文', '。', '，', '한국', 'ひら', 'カタ',
  '😀', '👨‍👩‍👧', '🏳️‍🌈', '👍🏽', '🇯🇵', '❤️', '\u200d',
  'e\u0301', 'a\u0308', '\u0301', 'ñ', 'é',
  'مرحبا', 'שלום', 'Привет', 'αβγ',
  '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|eot_id|>', '<|begin_of_text|>', '<|start_header_id|>',
];
for (let i = 0; i < 700; i++) {
  const n = 1 + Math.floor(rnd() * 12);
  let s = '';
  for (let j = 0; j < n; j++) s += pick(pool);
  add(s);
}

function golden(tok, name, file) {
  const lines = [];
  for (const text of texts) {
    lines.push(JSON.stringify({ text, ids: tok.encode(text, { add_special_tokens: false }) }));
  }
  fs.writeFileSync(path.join(out, file), zlib.gzipSync(lines.join('\n') + '\n', { level: 9 }));
  console.log(name, texts.length, 'texts ->', file);
  return lines;
}

const q = load('qwen2.5');
const qLines = golden(q, 'qwen2.5', 'qwen2.5.jsonl.gz');
// The pairs-merges layout must give the same ids.
const qp = load('qwen2.5', 'tokenizer.pairs-merges.json');
let diff = 0;
texts.forEach((t, i) => { if (JSON.stringify({ text: t, ids: qp.encode(t, { add_special_tokens: false }) }) !== qLines[i]) diff++; });
console.log('qwen2.5 pairs-merges layout differs on', diff, 'texts');
golden(load('llama3'), 'llama3', 'llama3.jsonl.gz');
golden(load('qwen3'), 'qwen3', 'qwen3.jsonl.gz');

// BOS from Llama 3.1's TemplateProcessing post-processor.
const l31 = load('llama3.1');
const special = ['Hello world', '', '<|begin_of_text|>x'].map((text) => ({ text, ids: l31.encode(text) }));
fs.writeFileSync(path.join(out, 'llama3.1-special.json'), JSON.stringify(special, null, 1) + '\n');

// Chat templates, rendered by the real Jinja text.
const convs = [
  [{ role: 'user', content: 'Hi there' }],
  [{ role: 'system', content: 'You are a survey respondent.' }, { role: 'user', content: 'Age: 40\n\nQuestion?' }, { role: 'assistant', content: 'Response: 3' }],
  [{ role: 'user', content: 'A' }, { role: 'assistant', content: 'B' }, { role: 'user', content: '  padded  \n' }, { role: 'assistant', content: '\nC ' }],
  [{ role: 'system', content: 'sys' }, { role: 'user', content: 'u1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'u2' }, { role: 'assistant', content: 'a2' }],
  [{ role: 'user', content: 'q' }, { role: 'assistant', content: '<think>\nreasoning\n</think>\n\nanswer' }],
  [{ role: 'system', content: 'S1' }, { role: 'user', content: 'U' }, { role: 'system', content: 'S2' }, { role: 'assistant', content: 'A' }],
  [{ role: 'user', content: 'q1' }, { role: 'assistant', content: '<think>\nr1\n</think>\n\na1' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: '\n\nResponse: 4' }],
  [{ role: 'user', content: 'q1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'q2' }],
];
const chat = [];
for (const name of ['qwen2.5', 'qwen3', 'llama3', 'llama3.1']) {
  const tok = load(name);
  for (const messages of convs) {
    for (const gen of [false, true]) {
      chat.push({ template: name, messages, add_generation_prompt: gen,
        text: tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: gen }) });
      // Qwen3's enable_thinking, passed as the template variable (as transformers' kwargs do)
      for (const think of name === 'qwen3' ? [false, true] : []) {
        chat.push({ template: name, messages, add_generation_prompt: gen, enable_thinking: think,
          text: tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: gen, enable_thinking: think }) });
      }
    }
  }
}
// Meta's Llama 3.1 Instruct template (with the "Cutting Knowledge Date"
// preamble) is not in /work/shared; pass its text as a third argument to
// render it too, under the name "llama3.1-meta".
if (process.argv[4]) {
  const tok = load('llama3');
  tok.chat_template = fs.readFileSync(process.argv[4], 'utf8');
  for (const messages of convs) {
    for (const gen of [false, true]) {
      chat.push({ template: 'llama3.1-meta', messages, add_generation_prompt: gen,
        text: tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: gen, chat_template: tok.chat_template }) });
    }
  }
}
fs.writeFileSync(path.join(out, 'chat.json'), JSON.stringify(chat, null, 1) + '\n');
console.log('chat', chat.length, 'renderings');
