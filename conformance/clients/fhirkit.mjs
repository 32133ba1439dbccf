// Drives a running gateway with fhir-kit-client, a third-party FHIR client,
// and prints what it saw as one JSON object for the Go test to check.
//
// Environment: MHG_BASE (FHIR base URL), MHG_TOKEN (bearer token),
// MHG_SEARCH_TYPE and MHG_SEARCH (a search to page through, as a query
// string), MHG_PAGE_SIZE.
import { Client } from 'fhir-kit-client';

const base = process.env.MHG_BASE;
const token = process.env.MHG_TOKEN;
const searchType = process.env.MHG_SEARCH_TYPE || 'Patient';
const search = new URLSearchParams(process.env.MHG_SEARCH || '');
const pageSize = process.env.MHG_PAGE_SIZE || '2';

const out = {};
const authed = new Client({ baseUrl: base, customHeaders: { Authorization: `Bearer ${token}` } });
const anonymous = new Client({ baseUrl: base });

function failure(err) {
  const r = err && err.response;
  return { status: r ? r.status : null, resourceType: r && r.data ? r.data.resourceType : null,
    code: r && r.data && r.data.issue ? r.data.issue[0].code : null, message: String(err && err.message) };
}

try {
  const cs = await anonymous.capabilityStatement();
  out.metadata = { resourceType: cs.resourceType, fhirVersion: cs.fhirVersion,
    types: cs.rest[0].resource.map((r) => r.type) };

  const params = Object.fromEntries(search.entries());
  params._count = pageSize;
  let bundle = await authed.search({ resourceType: searchType, searchParams: params });
  out.search = { total: bundle.total, pages: [] };
  const ids = [];
  for (let i = 0; bundle && i < 50; i++) {
    const matches = (bundle.entry || []).filter((e) => e.search && e.search.mode === 'match');
    out.search.pages.push(matches.length);
    ids.push(...matches.map((e) => e.resource.id));
    bundle = await authed.nextPage({ bundle });
  }
  out.search.ids = ids;

  if (ids.length > 0) {
    const res = await authed.read({ resourceType: searchType, id: ids[0] });
    out.read = { resourceType: res.resourceType, id: res.id };
  }

  try {
    await anonymous.read({ resourceType: searchType, id: ids[0] || 'x' });
    out.unauthenticated = { status: 200 };
  } catch (err) {
    out.unauthenticated = failure(err);
  }
} catch (err) {
  out.error = failure(err);
}
process.stdout.write(JSON.stringify(out) + '\n');
