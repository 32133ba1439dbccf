// Package narrative holds the fixed phrases of the narratives the gateway
// writes into MHP documents (section titles, table headings, notes about
// missing sources), in every language it writes them in, and the
// Accept-Language negotiation that picks one. Clinical content is never
// translated: codes keep the display text their source gave them.
//
// The phrases are data (phrases/<language>.json, one flat object per
// language), so that a translator edits them without touching Go; a test
// keeps every language's keys and placeholders equal to English.
package narrative
