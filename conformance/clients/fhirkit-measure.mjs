// Drives the gateway's statistics with fhir-kit-client, a third-party FHIR
// client, and prints what it got as one JSON object for the Go test
// (gateway/server TestFHIRKitEvaluateMeasure) to check.
//
// Environment: MHG_BASE (FHIR base URL), MHG_TOKEN (a statistics bearer
// token), MHG_MEASURE (Measure id), MHG_PERIOD_START, MHG_PERIOD_END,
// MHG_STRATIFIER (comma-separated strata).
import { Client } from 'fhir-kit-client';

const base = process.env.MHG_BASE;
const id = process.env.MHG_MEASURE;
const client = new Client({ baseUrl: base, customHeaders: { Authorization: `Bearer ${process.env.MHG_TOKEN}` } });
const anonymous = new Client({ baseUrl: base });

function failure(err) {
  const r = err && err.response;
  return { status: r ? r.status : null, resourceType: r && r.data ? r.data.resourceType : null,
    code: r && r.data && r.data.issue ? r.data.issue[0].code : null, message: String(err && err.message) };
}

const out = {};
try {
  const cs = await anonymous.capabilityStatement();
  const measure = cs.rest[0].resource.find((r) => r.type === 'Measure') || {};
  out.definition = ((measure.operation || []).find((o) => o.name === 'evaluate-measure') || {}).definition;

  const list = await client.search({ resourceType: 'Measure' });
  out.measures = (list.entry || []).map((e) => e.resource.id);
  out.read = (await client.read({ resourceType: 'Measure', id })).id;

  const input = { periodStart: process.env.MHG_PERIOD_START, periodEnd: process.env.MHG_PERIOD_END,
    stratifier: process.env.MHG_STRATIFIER };
  out.get = await client.operation({ name: 'evaluate-measure', resourceType: 'Measure', id, method: 'get', input });
  out.post = await client.operation({ name: 'evaluate-measure', resourceType: 'Measure', id, method: 'POST',
    input: { resourceType: 'Parameters', parameter: [
      { name: 'periodStart', valueDate: input.periodStart },
      { name: 'periodEnd', valueDate: input.periodEnd },
      ...input.stratifier.split(',').map((s) => ({ name: 'stratifier', valueCode: s }))] } });

  try {
    await client.operation({ name: 'evaluate-measure', resourceType: 'Measure', id, method: 'get',
      input: { periodStart: input.periodStart, periodEnd: input.periodEnd, subject: 'Patient/anyone' } });
    out.subject = { status: 200 };
  } catch (err) {
    out.subject = failure(err);
  }
} catch (err) {
  out.error = failure(err);
}
process.stdout.write(JSON.stringify(out) + '\n');
