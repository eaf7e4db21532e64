// The Milvus Node.js SDK against `heron serve`: create a collection, insert rows, search with a
// filter, query, drop. Usage: node basics.js HOST:PORT COLLECTION. Prints one JSON object of what
// each call answered; tests/server/test_node_sdk.py checks it.
'use strict';
const { MilvusClient, DataType, MetricType } = require('@zilliz/milvus2-sdk-node');

const [address, name] = process.argv.slice(2);
const DIM = 4;

function vector(i) {
  return [i, 1, (i % 3) / 3, 1 / (i + 1)];
}

async function main() {
  const client = new MilvusClient({ address, telemetry: { enabled: false }, logLevel: 'error' });
  await client.connectPromise;
  const out = {};
  const created = await client.createCollection({
    collection_name: name,
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
      { name: 'title', data_type: DataType.VarChar, max_length: 64 },
      { name: 'year', data_type: DataType.Int32 },
      { name: 'vector', data_type: DataType.FloatVector, dim: DIM },
    ],
    index_params: [{ field_name: 'vector', index_type: 'FLAT', metric_type: MetricType.L2 }],
  });
  out.create = created.error_code;
  out.has = (await client.hasCollection({ collection_name: name })).value;
  const described = await client.describeCollection({ collection_name: name });
  out.fields = described.schema.fields.map((f) => [f.name, f.data_type]);
  await client.loadCollectionSync({ collection_name: name });
  const rows = [];
  for (let i = 0; i < 20; i++) {
    rows.push({ id: i, title: `book ${i}`, year: 2000 + i, vector: vector(i) });
  }
  const inserted = await client.insert({ collection_name: name, data: rows });
  out.insert = { status: inserted.status.error_code, count: Number(inserted.insert_cnt), ids: inserted.IDs.int_id ? inserted.IDs.int_id.data : inserted.IDs.str_id.data };
  const searched = await client.search({
    collection_name: name,
    data: [vector(7)],
    filter: 'year >= 2005',
    limit: 3,
    output_fields: ['id', 'title', 'year'], // the key too: the SDK reads ids from the fields only
    consistency_level: 'Strong',
  });
  out.search = {
    status: searched.status.error_code,
    hits: searched.results.map((h) => ({ id: String(h.id), score: h.score, title: h.title, year: h.year })),
  };
  const queried = await client.query({
    collection_name: name,
    filter: 'id in [2, 4, 6]',
    output_fields: ['id', 'title', 'year'],
    consistency_level: 'Strong',
  });
  out.query = { status: queried.status.error_code, rows: queried.data };
  const stats = await client.getCollectionStatistics({ collection_name: name });
  out.rows = Number(stats.data.row_count);
  out.drop = (await client.dropCollection({ collection_name: name })).error_code;
  out.after_drop = (await client.hasCollection({ collection_name: name })).value;
  console.log(JSON.stringify(out));
  await client.closeConnection();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
