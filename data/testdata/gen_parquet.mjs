// Writes socsci_sample*.parquet: native SocSci210-layout rows built from the
// first 60 rows of ../sample/dev.jsonl.gz, with an independent Parquet
// writer (hyparquet-writer, data pages v2, dictionaries, SNAPPY or
// UNCOMPRESSED), and socsci_sample.expect.jsonl: the same rows read back
// with hyparquet, the reference the Go reader is compared with.
//
//   cd /tmp/pq && npm install --ignore-scripts hyparquet-writer@0.17.0 hyparquet@1.31.5
//   NODE_PATH=/tmp/pq/node_modules node --experimental-default-type=module \
//     data/testdata/gen_parquet.mjs   (run from the repository root)
import { createRequire } from 'module'
import fs from 'fs'
import zlib from 'zlib'
const require = createRequire('/tmp/pq/node_modules/')
const { parquetWriteFile } = await import(require.resolve('hyparquet-writer'))
const { parquetReadObjects } = await import(require.resolve('hyparquet'))

const lines = zlib.gunzipSync(fs.readFileSync('data/sample/dev.jsonl.gz')).toString().split('\n').filter(Boolean).slice(0, 60)
const labels = { Age: 'age', Gender: 'sex', Education: 'education', Income: 'income', Employment: 'employment', 'Political affiliation': 'party_id', Ideology: 'ideology' }
const keys = ['age', 'sex', 'education', 'employment', 'income', 'party_id', 'ideology']
const rows = lines.map((l, i) => {
  const r = JSON.parse(l)
  const [persona, scen] = r.input.split('\n\n')
  const demo = Object.fromEntries(keys.map(k => [k, null]))
  for (const item of persona.slice('Demographics: '.length).split('; ')) {
    const j = item.indexOf(': ')
    const k = labels[item.slice(0, j)]
    demo[k] = k === 'age' ? BigInt(item.slice(j + 2)) : item.slice(j + 2)
  }
  return {
    sample_id: `s${i}`, participant: BigInt(1000 + (i % 37)), demographic: i % 11 === 5 ? null : demo,
    stimuli: scen.slice('Scenario: '.length), prompt: i % 3 === 0 ? null : r.input,
    reasoning: i % 4 === 0 ? null : `because ${i}`, response: BigInt(r.output.slice('Response: '.length)),
    condition_num: BigInt(r.condition_num), task_num: BigInt(i % 2), study_id: r.study_id,
  }
})
const col = (name, f = r => r[name]) => ({ name, data: rows.map(f) })
const columnData = ['sample_id', 'participant', 'demographic', 'stimuli', 'prompt', 'reasoning', 'response', 'condition_num', 'task_num', 'study_id'].map(n => col(n))
const S = (name) => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' })
const I = (name) => ({ name, type: 'INT64', repetition_type: 'OPTIONAL' })
const schema = [
  { name: 'schema', num_children: 10 },
  S('sample_id'), I('participant'),
  { name: 'demographic', repetition_type: 'OPTIONAL', num_children: 7 },
  I('age'), S('sex'), S('education'), S('employment'), S('income'), S('party_id'), S('ideology'),
  S('stimuli'), S('prompt'), S('reasoning'), I('response'), I('condition_num'), I('task_num'), S('study_id'),
]
for (const [file, codec] of [['socsci_sample.parquet', 'SNAPPY'], ['socsci_sample_plain.parquet', 'UNCOMPRESSED']]) {
  await parquetWriteFile({ filename: 'data/testdata/' + file, columnData, schema, codec, rowGroupSize: 25, pageSize: 4096 })
}
const buf = fs.readFileSync('data/testdata/socsci_sample.parquet')
const back = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) })
const json = back.map(r => JSON.stringify(r, (k, v) => typeof v === 'bigint' ? Number(v) : v === undefined ? null : v))
fs.writeFileSync('data/testdata/socsci_sample.expect.jsonl', json.join('\n') + '\n')
console.log(back.length, 'rows')
