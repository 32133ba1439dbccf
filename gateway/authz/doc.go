// Package authz is the policy decision point: an embedded OPA engine that
// loads the Rego policies (a directory or an OPA bundle), prepares the
// queries once per revision, reloads on change while keeping the last good
// revision, and logs every decision. Callers ask Decide with an Input that
// holds no protected attribute and get a Decision; errors deny.
package authz
