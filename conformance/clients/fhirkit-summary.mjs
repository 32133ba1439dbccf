// Drives the gateway's patient-level operations with fhir-kit-client, a
// third-party FHIR client, and prints what it got as one JSON object for
// the Go test (gateway/server TestFHIRKitSummary) to check.
//
// Environment: MHG_BASE (FHIR base URL), MHG_TOKEN (bearer token),
// MHG_IDENTIFIER (system|value of a patient), MHG_PROFILE (Composition
// profile to ask for), MHG_LANGUAGE (Accept-Language).
import { Client } from 'fhir-kit-client';

const base = process.env.MHG_BASE;
const identifier = process.env.MHG_IDENTIFIER;
const profile = process.env.MHG_PROFILE;
const headers = { Authorization: `Bearer ${process.env.MHG_TOKEN}` };
if (process.env.MHG_LANGUAGE) headers['Accept-Language'] = process.env.MHG_LANGUAGE;
const client = new Client({ baseUrl: base, customHeaders: headers });
const anonymous = new Client({ baseUrl: base });

function failure(err) {
  const r = err && err.response;
  return { status: r ? r.status : null, resourceType: r && r.data ? r.data.resourceType : null,
    code: r && r.data && r.data.issue ? r.data.issue[0].code : null, message: String(err && err.message) };
}

const out = {};
try {
  const cs = await anonymous.capabilityStatement();
  const patient = cs.rest[0].resource.find((r) => r.type === 'Patient');
  const def = (name) => ((patient.operation || []).find((o) => o.name === name) || {}).definition;
  out.operation = { summary: def('summary'), everything: def('everything') };

  // Type level, GET: Patient/$summary?identifier=...&profile=...
  out.summary = await client.operation({ name: 'summary', resourceType: 'Patient', method: 'get',
    input: { identifier, profile } });
  const subject = out.summary.entry[0].resource.subject.reference;
  const id = subject.split('/')[1];

  // Instance level, GET.
  out.instance = await client.operation({ name: 'summary', resourceType: 'Patient', id, method: 'get' });

  // Type level, POST with a Parameters resource.
  const [system, value] = identifier.split('|');
  out.post = await client.operation({ name: 'summary', resourceType: 'Patient', method: 'POST',
    input: { resourceType: 'Parameters', parameter: [
      { name: 'identifier', valueIdentifier: { system, value } },
      { name: 'profile', valueCanonical: profile }] } });

  // $everything, paged with the client's own nextPage.
  let bundle = await client.operation({ name: 'everything', resourceType: 'Patient', id, method: 'get',
    input: { _count: '10' } });
  out.pages = [];
  for (let i = 0; bundle && i < 20; i++) {
    out.pages.push((bundle.entry || []).filter((e) => e.search && e.search.mode === 'match').length);
    bundle = await client.nextPage({ bundle });
  }

  try {
    await client.operation({ name: 'summary', resourceType: 'Patient', id, method: 'get',
      input: { profile: 'http://example.org/StructureDefinition/not-a-summary' } });
    out.badProfile = { status: 200 };
  } catch (err) {
    out.badProfile = failure(err);
  }
} catch (err) {
  out.error = failure(err);
}
process.stdout.write(JSON.stringify(out) + '\n');
