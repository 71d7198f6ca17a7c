// Writes socsci_sample_v1.parquet with a second independent writer
// (parquetjs-lite: data pages v1, PLAIN values, GZIP and SNAPPY columns,
// plus DOUBLE and BOOLEAN extra columns) from socsci_sample.expect.jsonl.
//
//   cd /tmp/pq && npm install --ignore-scripts parquetjs-lite@0.8.7
//   NODE_PATH=/tmp/pq/node_modules node data/testdata/gen_parquet_v1.cjs   (from the repository root)
const parquet = require('parquetjs-lite')
const fs = require('fs')
const rows = fs.readFileSync('data/testdata/socsci_sample.expect.jsonl', 'utf8').split('\n').filter(Boolean).map(JSON.parse)
const S = (compression) => ({ type: 'UTF8', optional: true, compression })
const I = (compression) => ({ type: 'INT64', optional: true, compression })
const schema = new parquet.ParquetSchema({
  sample_id: S('GZIP'), participant: I('SNAPPY'),
  demographic: { optional: true, fields: {
    age: I('GZIP'), sex: S('SNAPPY'), education: S('GZIP'), employment: S('UNCOMPRESSED'),
    income: S('SNAPPY'), party_id: S('GZIP'), ideology: S('SNAPPY'),
  } },
  stimuli: S('GZIP'), prompt: S('SNAPPY'), reasoning: S('UNCOMPRESSED'), response: I('GZIP'),
  condition_num: { type: 'INT64', compression: 'SNAPPY' }, task_num: I('GZIP'), study_id: S('SNAPPY'),
  weight: { type: 'DOUBLE', optional: true, compression: 'GZIP' },
  flag: { type: 'BOOLEAN', compression: 'SNAPPY' },
})
;(async () => {
  const w = await parquet.ParquetWriter.openFile(schema, 'data/testdata/socsci_sample_v1.parquet', { useDataPageV2: false, rowGroupSize: 20, pageSize: 2048 })
  for (const [i, r] of rows.entries()) {
    const o = { flag: i % 3 === 1, condition_num: r.condition_num }
    for (const k of ['sample_id', 'participant', 'stimuli', 'prompt', 'reasoning', 'response', 'task_num', 'study_id']) {
      if (r[k] !== null) o[k] = r[k]
    }
    if (i % 5 !== 2) o.weight = i / 4
    if (r.demographic) {
      o.demographic = {}
      for (const [k, v] of Object.entries(r.demographic)) if (v !== null) o.demographic[k] = v
    }
    await w.appendRow(o)
  }
  await w.close()
})()
