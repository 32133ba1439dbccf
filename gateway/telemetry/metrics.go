package telemetry

// The gateway's metrics are recorded by the package where the event
// happens, each on the meter provider its Options name (by default the
// global one, which Setup installs), and exported through the allow-list
// like every attribute. In Prometheus text format:
//
//	http_server_request_duration_seconds{http_route,http_request_method,http_response_status_code}
//	    request rate and latency by route template (otelgin, in fhirapi)
//	mhg_authz_decisions_total{mhg_phase,mhg_decision}         authz
//	mhg_authz_decision_reasons_total{mhg_rule_id,mhg_decision}
//	mhg_authz_decision_duration_seconds{mhg_phase}
//	mhg_authz_reloads_total, mhg_authz_reload_failures_total{stage}, mhg_authz_policy_stale
//	mhg_cache_hits_total{mhg_cache_kind,mhg_source_id}         cache
//	mhg_cache_misses_total{mhg_cache_kind,mhg_source_id}
//	    hit ratio: sum(rate(mhg_cache_hits_total[5m]))
//	             / (sum(rate(mhg_cache_hits_total[5m])) + sum(rate(mhg_cache_misses_total[5m])))
//	mhg_cache_loads_total, mhg_cache_store_errors_total{cache_op}, mhg_cache_degraded
//	mhg_source_requests_total{mhg_source_id}                   source
//	mhg_source_errors_total{mhg_source_id,error_type}
//	mhg_source_duration_seconds{mhg_source_id}
//	mhg_source_breaker_state{mhg_source_id}  0 closed, 1 half-open, 2 open
//	mhg_audit_records_total{mhg_outcome}                      audit
//	mhg_audit_failures_total{mhg_audit_sink,error_type}
//	mhg_audit_write_duration_seconds
