// Package search holds the search parameters the gateway supports on the
// clinical resource types it serves, and evaluates them.
//
// Definitions (Params, Types) are the one list both the search handler and
// the CapabilityStatement read, so what the gateway says it supports and
// what it does cannot drift apart. Parse reads one parameter of a request
// into a Query; Query.Match and Query.Sort evaluate it on resources.
//
// Criteria are evaluated on the released MHP resources, after mapping and
// after the release policy has removed and redacted what the requester may
// not see, and before paging. Nothing is pushed down to the national
// sources: a code search must also match the international coding the
// mapping added beside the national one (SNOMED CT, ICD-10, LOINC, ATC),
// which the source does not hold; dates are compared after the mapping has
// normalised partial and absent dates; and a criterion on an element the
// policy redacted must not match, which a source cannot know. The cost is
// that a source returns every resource of the type for the patient, which
// the federation already caches per patient and type.
//
// The package holds no HTTP and no policy: it reports errors as sentinel
// errors (ErrUnknown, ErrUnsupported, ErrInvalid) and the caller decides
// the status and the Prefer: handling rules. Error messages never quote a
// search value (it may be an identifier).
package search
