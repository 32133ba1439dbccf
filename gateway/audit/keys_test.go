package audit

import (
	"reflect"
	"testing"
	"time"
)

// The index keys taken from the event as it is built are the keys KeysOf
// reads back from its JSON, for every shape of entry the gateway records:
// outcomes, break-the-glass, reads, searches without a patient, minimal
// entries, no trace, organisation or country, and strings that are not
// valid UTF-8 (which the JSON carries changed, so they are read back).
func TestBuiltKeysAreTheRenderedKeys(t *testing.T) {
	breakGlass := entryFor(OutcomeSuccess)
	breakGlass.Requester.PurposeOfUse = "ETREAT"
	breakGlass.Requester.BreakGlass = true
	breakGlass.BreakGlass = true
	read := entryFor(OutcomeSuccess)
	read.Interaction, read.Operation = "read", ""
	search := entryFor(OutcomeSuccess)
	search.Interaction, search.Operation, search.ResourceType, search.Patient = "search-type", "", "Observation", ""
	anonymous := entryFor(OutcomeDenied)
	anonymous.Requester.Org, anonymous.Requester.Country, anonymous.TraceID, anonymous.SpanID = "", "", "", ""
	noClient := entryFor(OutcomeFailed)
	noClient.Requester.ClientID = ""
	invalid := entryFor(OutcomeSuccess)
	invalid.Requester.ClientID = "client-\xff\xfe-1"
	invalid.Requester.Org = "org-\xc3"

	entries := map[string]Entry{
		"success": entryFor(OutcomeSuccess), "denied": entryFor(OutcomeDenied), "failed": entryFor(OutcomeFailed),
		"break-glass": breakGlass, "read": read, "search": search, "anonymous": anonymous, "no client": noClient,
		"minimal": {Outcome: OutcomeFailed}, "invalid UTF-8": invalid,
	}
	at := testTime.Add(time.Second)
	for name, e := range entries {
		t.Run(name, func(t *testing.T) {
			ev, err := build(e, "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a", at, Observer{Site: "eu-west", Instance: "mhg-0"})
			if err != nil {
				t.Fatal(err)
			}
			b, got, err := render(e, "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a", at, Observer{Site: "eu-west", Instance: "mhg-0"})
			if err != nil {
				t.Fatal(err)
			}
			want, ok := KeysOf(b)
			if !ok {
				t.Fatalf("the rendered event does not parse: %s", b)
			}
			if built, valid := ev.keys(); valid != (name != "invalid UTF-8") {
				t.Fatalf("keys taken from the struct: valid %v", valid)
			} else if valid && !reflect.DeepEqual(built, want) {
				t.Fatalf("keys from the struct\n%+v\nfrom the JSON\n%+v", built, want)
			}
			if !reflect.DeepEqual(got, indexEntryOf(want)) {
				t.Fatalf("index entry\n%+v\nwant\n%+v", got, indexEntryOf(want))
			}
			if want.Outcome == "" || want.Recorded.IsZero() {
				t.Fatalf("keys lack outcome or time: %+v", want)
			}
		})
	}
}
