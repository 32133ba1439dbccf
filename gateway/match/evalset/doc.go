// Package evalset generates a labelled evaluation set for the $match
// scoring model and measures the model on it: precision and recall per
// grade.
//
// The set is synthetic and seeded: a few thousand people from Ukraine,
// Russia, Syria, Afghanistan, Eritrea and Somalia, and Germans, each with
// records in their country of origin (in its own script: Cyrillic, Arabic,
// Ge'ez, or the Somali Latin orthography) and in Germany and the
// Netherlands (romanised the way each country does: passport
// romanisations, German, Dutch, French, Polish and ISO 9 spellings of
// Cyrillic names; the English, French and German spellings of Arabic,
// Dari, Tigrinya and Somali names). Records differ as real ones do: names
// in the other order, patronymics and fathers' names left out, compound
// names joined or split, typing errors, birth dates known to the year only
// or written as 1 January, day and month swapped, a year off, sex or
// country of birth missing. Namesakes (different people with the same
// common names, often born the same year) and siblings are the true
// non-matches a model must not link.
//
// The romanisation tables here are the generator's own, written from the
// published systems; the model does not use them, so the evaluation
// measures how well its generic folding copes with spellings it was not
// given.
package evalset
