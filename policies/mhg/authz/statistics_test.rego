package mhg.authz_test

import data.mhg.authz

researcher(country) := with_scopes(
	with_purpose(with_role(clinician(country), "researcher"), "HRESCH"),
	["system/Measure.rs", "system/MeasureReport.rs"],
)

stratum(code) := {"code": code, "class": "S"} if {
	code in {"migration-status", "length-of-stay"}
} else := {"code": code, "class": "C"} if {
	code == "reporting-country"
} else := {"code": code, "class": "P"}

statistics(measure, strata, months) := {
	"measure": measure,
	"protected": measure == "mhp-hiv-diagnoses",
	"strata": [stratum(s) | some s in strata],
	"period_months": months,
}

# $evaluate-measure asked of one source.
statistics_query(requester, country, stats) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "Measure", "operation": "evaluate-measure"},
	"source": source(country),
	"consent": [],
	"statistics": stats,
}

# The release of the merged report: no source.
report_release(requester, stats) := {
	"phase": "release",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "Measure", "operation": "evaluate-measure"},
	"resource": {"type": "MeasureReport", "security": [], "category": [], "class": "C"},
	"consent": [],
	"statistics": stats,
}

tb_by_sex := statistics("mhp-tb-active", ["sex", "age-band-who"], 12)

statistics_obligations(d) := [o | some o in d.obligations; o.kind == "statistics"]

test_domestic_statistics_allowed_with_domestic_terms if {
	d := authz.decision with input as statistics_query(researcher("DE"), "DE", tb_by_sex)
	d.allow
	d.reasons == ["access.domestic"]
	statistics_obligations(d) == [{"kind": "statistics", "k": 10, "rounding": 0, "grain": "month", "rule": "statistics.terms.domestic"}]
}

test_cross_border_statistics_under_the_agreement if {
	d := authz.decision with input as statistics_query(researcher("DE"), "NL", tb_by_sex) with time.now_ns as mid_2025
	d.allow
	d.agreements == ["de-nl-ua-statistics-2025"]
	statistics_obligations(d) == [{
		"kind": "statistics", "k": 10, "rounding": 5, "grain": "quarter",
		"rule": "statistics.terms.de-nl-ua-statistics-2025",
	}]
}

test_public_health_role if {
	officer := with_purpose(with_role(researcher("NL"), "public-health"), "PUBHLTH")
	authz.allow with input as statistics_query(officer, "NL", tb_by_sex)
	abroad := with_purpose(officer, "POPHLTH")
	authz.allow with input as statistics_query(abroad, "UA", tb_by_sex) with time.now_ns as mid_2025
}

# Statistics cross a border only under an agreement that names them: the
# United States is party to none.
test_no_statistics_without_an_agreement if {
	d := authz.decision with input as statistics_query(researcher("DE"), "BR", tb_by_sex) with time.now_ns as mid_2025
	not d.allow
	d.reasons == ["agreement.cross-border.no-agreement"]
}

test_protected_class_gets_protected_k if {
	hiv := statistics("mhp-hiv-diagnoses", ["sex"], 12)
	domestic := authz.decision with input as statistics_query(researcher("DE"), "DE", hiv)
	statistics_obligations(domestic)[0].k == 15
	abroad := authz.decision with input as statistics_query(researcher("DE"), "UA", hiv) with time.now_ns as mid_2025
	statistics_obligations(abroad)[0].k == 20
}

test_clinician_refused if {
	clin := with_scopes(with_purpose(clinician("DE"), "PUBHLTH"), ["system/*.rs"])
	d := authz.decision with input as statistics_query(clin, "DE", tb_by_sex)
	not d.allow
	"role.not-allowed-for-class" in d.reasons
}

test_forbidden_and_missing_purposes_refused if {
	every p in ["GOV", "HLEGAL", ""] {
		d := authz.decision with input as statistics_query(with_purpose(researcher("DE"), p), "DE", tb_by_sex)
		not d.allow
	}
	gov := authz.deny with input as statistics_query(with_purpose(researcher("DE"), "GOV"), "DE", tb_by_sex)
	"firewall.query.purpose-forbidden" in gov
	hlegal := authz.deny with input as statistics_query(with_purpose(researcher("DE"), "HLEGAL"), "NL", tb_by_sex) with time.now_ns as mid_2025
	"firewall.query.purpose-forbidden" in hlegal
	"purpose.missing" in authz.deny with input as statistics_query(with_purpose(researcher("DE"), ""), "DE", tb_by_sex)
}

test_migration_status_only_where_the_terms_allow if {
	by_status := statistics("mhp-tb-active", ["migration-status"], 12)
	authz.allow with input as statistics_query(researcher("DE"), "DE", by_status)
	d := authz.decision with input as statistics_query(researcher("DE"), "NL", by_status) with time.now_ns as mid_2025
	not d.allow
	"statistics.migration-status-stratum-not-allowed" in d.reasons
	stay := statistics("mhp-tb-active", ["sex", "length-of-stay"], 12)
	"statistics.migration-status-stratum-not-allowed" in authz.deny with input as statistics_query(researcher("DE"), "UA", stay) with time.now_ns as mid_2025
}

test_stratum_outside_the_terms_refused if {
	terms := object.union(object.remove(data.mhg.index.statistics_domestic, ["strata"]), {"strata": {"sex": true}})
	d := authz.decision with input as statistics_query(researcher("DE"), "DE", tb_by_sex)
		with data.mhg.index.statistics_domestic as terms
	not d.allow
	d.reasons == ["statistics.stratum-not-allowed"]
}

test_measure_outside_the_terms_refused if {
	terms := object.union(object.remove(data.mhg.index.statistics_domestic, ["measures"]), {"measures": {"mhp-tb-active": true}})
	d := authz.decision with input as statistics_query(researcher("DE"), "DE", statistics("mhp-hiv-diagnoses", [], 12))
		with data.mhg.index.statistics_domestic as terms
	not d.allow
	d.reasons == ["statistics.measure-not-covered"]
}

test_period_shorter_than_grain_refused if {
	two_months := statistics("mhp-tb-active", ["sex"], 2)
	authz.allow with input as statistics_query(researcher("DE"), "DE", two_months)
	d := authz.decision with input as statistics_query(researcher("DE"), "UA", two_months) with time.now_ns as mid_2025
	not d.allow
	"statistics.period-shorter-than-grain" in d.reasons
	authz.allow with input as statistics_query(researcher("DE"), "UA", statistics("mhp-tb-active", ["sex"], 3)) with time.now_ns as mid_2025
}

test_terms_missing_refused if {
	d := authz.decision with input as statistics_query(researcher("DE"), "DE", tb_by_sex)
		with data.mhg.index as object.remove(data.mhg.index, ["statistics_domestic"])
	not d.allow
	"statistics.terms-missing" in d.reasons

	# Without its terms the statistics agreement covers no statistics.
	abroad := authz.decision with input as statistics_query(researcher("NL"), "UA", tb_by_sex)
		with time.now_ns as mid_2025
		with data.mhg.index as json.remove(data.mhg.index, ["agreements/de-nl-ua-statistics-2025/statistics"])
	not abroad.allow
	"statistics.terms-missing" in abroad.reasons
}

test_only_the_report_is_released if {
	authz.allow with input as report_release(researcher("DE"), tb_by_sex)
	record := object.union(report_release(researcher("DE"), tb_by_sex), {"resource": resource("Condition")})
	d := authz.decision with input as record
	not d.allow
	"statistics.not-an-aggregate" in d.reasons
}

test_statistics_must_be_described if {
	req := object.remove(statistics_query(researcher("DE"), "DE", tb_by_sex), ["statistics"])
	"input.statistics-missing" in authz.deny with input as req
}

test_measure_definitions_are_aggregate_class if {
	authz.data_class == "aggregate" with input as local_query(researcher("DE"), "Measure")
	authz.allow with input as local_query(researcher("DE"), "Measure")
}
