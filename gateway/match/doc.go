// Package match is the scoring model behind Patient/$match: it decides how
// likely two patient records are to describe the same person when they
// share no identifier.
//
// Names are compared after transliteration to Latin (Cyrillic, Arabic,
// Ge'ez and the other scripts Unidecode covers) and after folding away the
// differences between romanisations of one name (Ukrainian and Russian
// passport, German, French, Dutch, Polish and ISO 9 spellings of the same
// Cyrillic name; the many English and French spellings of an Arabic or
// Tigrinya one), in any order of family and given names, with compound
// names joined or split and patronymics optional. Birth dates may be
// partial (a year, a year and month) and a country's convention for an
// unknown day (1 January) counts as a year only. Sex, country of birth,
// citizenship and identifiers of a shared system add their evidence.
//
// The evidence is weighed with a Fellegi-Sunter model: every field has
// agreement levels, each with an m-probability (how often the level is seen
// when the two records are the same person) and a u-probability (how often
// when they are not); the score is the sum of log2(m/u) over the fields,
// and grades (certain, probable, possible, certainly-not) are thresholds on
// it. The weights, the thresholds and the per-country adjustments are data
// (model.yaml, or a file of the same shape) so that they can be tuned
// without changing the code; the evaluation set in evalset measures
// precision and recall per grade.
//
// The package does no I/O and knows nothing of FHIR resources: callers turn
// a Patient into Traits.
package match
