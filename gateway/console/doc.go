// Package console serves the gateway's pages for the people who use it in
// the browser, under /console/: the policy workbench of the legal team
// (the agreements and rules as tables, drafts edited as forms, JSON or
// Rego, their tests and checks, impact analysis by replaying recorded
// decisions, explanations, publishing as a reviewable change), the
// audit desk of auditors (the AuditEvent timeline, the break-the-glass
// review queue, the audit chain, the disclosure report for a patient) and
// the statistics page of public health and researchers (a measure by up to
// two strata as $evaluate-measure releases it, through the Statistics
// interface the server implements over the federation).
//
// Pages are rendered on the server with html/template from the types the
// API uses (audit.Event, authz.Agreement, authz.Explanation, ...); the
// templates and assets are embedded, the script only enhances pages that
// work without it, and the Content-Security-Policy allows no inline script.
// People sign in with OpenID Connect (authorization code flow with PKCE)
// or, in the development default, a one-time link printed at start-up;
// sessions live on the server behind a Secure, HttpOnly, SameSite cookie,
// every form carries a CSRF token, and sessions end when idle.
//
// The console holds no rule of its own: every page asks the same policy
// the FHIR routes ask (console.rego, disclosures.rego, the audit-record
// rules, statistics.rego), and every action that reads patient-related data or changes
// anything is recorded as an AuditEvent like an API call. It never changes
// the running policy: a published draft is a patch and a signed bundle for
// review.
package console
