// Package deploy holds no code that ships: it is the deployment files
// (Dockerfile, compose.yaml with the OpenTelemetry Collector and Jaeger,
// otel-collector.yaml, the Kubernetes kustomize base under k8s/) and the
// tests that check them without Docker or a cluster: every YAML file
// parses, the collector's second PHI guard lists exactly the gateway's
// attribute allow-list, the compose environment and the ConfigMap are
// valid gateway configurations, and probes, Service, HPA and mounts point
// at what exists.
package deploy
