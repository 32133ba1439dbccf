// Package telemetry sets up OpenTelemetry tracing and metrics and holds the
// one attribute allow-list: span and metric attributes outside it are
// dropped before export, so patient data cannot leave through telemetry.
package telemetry
