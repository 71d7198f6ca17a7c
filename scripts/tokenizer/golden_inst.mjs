// golden_inst.mjs renders the [INST] chat templates of Llama 2 and Mistral
// (tokenize/templates/*.jinja, the chat_template strings of their
// tokenizer_config.json files) with transformers.js apply_chat_template and
// encodes each rendering, writing tokenize/testdata/chat-inst.json.
//
//   node golden_inst.mjs ../../tokenize
//
// Tokenizers: Mistral 7B v0.1's real tokenizer.json (testdata/mistral-tokenizer.json.gz,
// "legacy": Prepend+Replace normalizer, [INST] as plain text, as Llama 2 and
// Mistral v0.1/v0.2 files are) and its Metaspace rewrite
// (testdata/spm-metaspace.json, prepend_scheme "first") with [INST] and
// [/INST] added as special tokens, as Mistral v0.3's tokenizer.json has them.
// Conversations whose template raises an exception are recorded as errors.
import { PreTrainedTokenizer } from '@huggingface/transformers';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';

const root = process.argv[2] || '../../tokenize';
const td = path.join(root, 'testdata');
const tj = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(td, 'mistral-tokenizer.json.gz'))).toString('utf8'));
const tc = JSON.parse(fs.readFileSync(path.join(td, 'mistral-tokenizer_config.json'), 'utf8'));
const cfg = { ...tc, tokenizer_class: 'PreTrainedTokenizerFast' };

const ms = JSON.parse(JSON.stringify(tj));
Object.assign(ms, JSON.parse(fs.readFileSync(path.join(td, 'spm-metaspace.json'), 'utf8')));
const instAdded = ['[INST]', '[/INST]'].map((content, i) => ({ id: 32000 + i, content, single_word: false,
  lstrip: false, rstrip: false, normalized: false, special: true }));
ms.added_tokens = [...ms.added_tokens, ...instAdded];
const toks = { legacy: new PreTrainedTokenizer(tj, cfg), metaspace_inst: new PreTrainedTokenizer(ms, cfg) };

const S = (content) => ({ role: 'system', content });
const U = (content) => ({ role: 'user', content });
const A = (content) => ({ role: 'assistant', content });
const socsci = 'Demographics: Age: 74; Education: Some college\n\nScenario: You read “A” and then were asked: “Q?” Only return an integer from 1 to 5.';
const convs = [
  [U('Hi there')],
  [S('You are a survey respondent.'), U('Age: 40\n\nQuestion?'), A('Response: 3')],
  [S('You are a survey respondent.'), U('Age: 40\n\nQuestion?')],
  [S('Answer as the person described.'), U(socsci), A('Response: 2')],
  [U('A'), A('B'), U('  padded  \n'), A('\nC ')],
  [S('sys'), U('u1'), A('a1'), U('u2'), A('a2')],
  [S('sys'), U('u1'), A('a1'), U('u2')],
  [S('sys'), U('same'), A('a1'), U('same'), A('a2')],
  [U('q1'), A('a1'), U('q2')],
  [U(' lead space'), A(' lead space')],
  [U('x'), A('')],
  [U(''), A('y')],
  [S(' spaced system \n'), U('\tu\t'), A('  café 🦜 ')],
  [U('[INST] nested [/INST]'), A('</s> no')],
  [U('tail ]'), A(']: bracket')],
  [U('1 for Yes or 2 for No'), A('1')],
  // templates that raise: roles out of turn, a system message later on
  [A('first')],
  [U('u'), U('u again')],
  [S('S1'), U('U'), S('S2'), A('A')],
  [U('U'), S('S2')],
  [S('only system')],
];
const names = fs.readdirSync(path.join(root, 'templates')).filter((f) => f.endsWith('.jinja')).map((f) => f.slice(0, -6)).sort();
const cases = [];
for (const name of names) {
  const src = fs.readFileSync(path.join(root, 'templates', name + '.jinja'), 'utf8');
  for (const messages of convs) {
    for (const gen of [false, true]) {
      const c = { template: name, messages, add_generation_prompt: gen };
      try {
        c.text = toks.legacy.apply_chat_template(messages, { tokenize: false, add_generation_prompt: gen, chat_template: src });
        for (const [k, tok] of Object.entries(toks)) c[k] = tok.encode(c.text, { add_special_tokens: false });
      } catch (e) {
        c.error = String(e.message || e);
      }
      cases.push(c);
    }
  }
}
fs.writeFileSync(path.join(td, 'chat-inst.json'), JSON.stringify({ inst_added: instAdded, cases }) + '\n');
console.log('chat-inst', cases.length, 'cases,', cases.filter((c) => c.error).length, 'errors');
