package auth

import (
	"errors"
	"testing"
)

func TestParseScope(t *testing.T) {
	all := PermCreate | PermRead | PermUpdate | PermDelete | PermSearch
	tests := []struct {
		in      string
		want    Scope
		wantErr bool
	}{
		{in: "system/Patient.rs", want: Scope{"system", "Patient", PermRead | PermSearch, ""}},
		{in: "system/*.rs", want: Scope{"system", "*", PermRead | PermSearch, ""}},
		{in: "system/Observation.r", want: Scope{"system", "Observation", PermRead, ""}},
		{in: "system/Patient.cruds", want: Scope{"system", "Patient", all, ""}},
		{in: "system/Patient.cud", want: Scope{"system", "Patient", PermCreate | PermUpdate | PermDelete, ""}},
		{in: "system/Observation.rs?category=laboratory", want: Scope{"system", "Observation", PermRead | PermSearch, "category=laboratory"}},
		{in: "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			want: Scope{"system", "Observation", PermRead | PermSearch, "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}},
		{in: "user/Patient.rs", want: Scope{"user", "Patient", PermRead | PermSearch, ""}},
		{in: "patient/*.r", want: Scope{"patient", "*", PermRead, ""}},
		{in: "system/Patient.read", want: Scope{"system", "Patient", PermRead | PermSearch, ""}},
		{in: "system/Patient.write", want: Scope{"system", "Patient", PermCreate | PermUpdate | PermDelete, ""}},
		{in: "system/*.*", want: Scope{"system", "*", all, ""}},
		{in: "system/*.read", want: Scope{"system", "*", PermRead | PermSearch, ""}},

		{in: "", wantErr: true},
		{in: "openid", wantErr: true},
		{in: "launch/patient", wantErr: true},
		{in: "offline_access", wantErr: true},
		{in: "admin/Patient.rs", wantErr: true},
		{in: "System/Patient.rs", wantErr: true},
		{in: "system/patient.rs", wantErr: true},
		{in: "system/Pat1ent.rs", wantErr: true},
		{in: "system/.rs", wantErr: true},
		{in: "system/Patient", wantErr: true},
		{in: "system/Patient.", wantErr: true},
		{in: "system/Patient.sr", wantErr: true},  // v2 order is c r u d s
		{in: "system/Patient.rrs", wantErr: true}, // no repeats
		{in: "system/Patient.rx", wantErr: true},
		{in: "system/Patient.RS", wantErr: true},
		{in: "system/Patient.Read", wantErr: true},
		{in: "system/Patient.rs?", wantErr: true},
		{in: "system/Patient.read?category=x", wantErr: true}, // v1 takes no query
		{in: "system/Patient.rs?a=%zz", wantErr: true},
		{in: "system/Patient.rs.x", wantErr: true},
		{in: "system/Patient/x.rs", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseScope(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseScope accepted it: %+v", got)
				}
				if !errors.Is(err, ErrInvalidScope) {
					t.Errorf("error %v does not wrap ErrInvalidScope", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseScope = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestScopeAllows(t *testing.T) {
	tests := []struct {
		scope       string
		typ         string
		interaction string
		want        bool
	}{
		{"system/Patient.rs", "Patient", InteractionRead, true},
		{"system/Patient.rs", "Patient", InteractionVRead, true},
		{"system/Patient.rs", "Patient", InteractionHistory, true},
		{"system/Patient.rs", "Patient", InteractionSearchType, true},
		{"system/Patient.rs", "Patient", InteractionHistoryType, true},
		{"system/Patient.rs", "Patient", InteractionCreate, false},
		{"system/Patient.rs", "Patient", InteractionUpdate, false},
		{"system/Patient.rs", "Patient", InteractionPatch, false},
		{"system/Patient.rs", "Patient", InteractionDelete, false},
		{"system/Patient.rs", "Observation", InteractionRead, false},
		{"system/Patient.rs", "", InteractionSearchSystem, false},
		{"system/Patient.rs", "Patient", "search", false}, // unknown interaction
		{"system/Patient.rs", "Patient", "", false},

		{"system/Observation.r", "Observation", InteractionRead, true},
		{"system/Observation.r", "Observation", InteractionSearchType, false},
		{"system/Observation.s", "Observation", InteractionSearchType, true},
		{"system/Observation.s", "Observation", InteractionRead, false},

		{"system/*.rs", "Condition", InteractionRead, true},
		{"system/*.rs", "AllergyIntolerance", InteractionSearchType, true},
		{"system/*.rs", "", InteractionSearchSystem, true},
		{"system/*.rs", "", InteractionHistorySystem, true},
		{"system/*.rs", "Patient", InteractionUpdate, false},
		{"system/*.r", "", InteractionSearchSystem, false},
		{"system/*.rs", "", InteractionRead, false}, // read needs a type

		{"system/Patient.cruds", "Patient", InteractionCreate, true},
		{"system/Patient.cruds", "Patient", InteractionUpdate, true},
		{"system/Patient.cruds", "Patient", InteractionPatch, true},
		{"system/Patient.cruds", "Patient", InteractionDelete, true},
		{"system/Patient.c", "Patient", InteractionRead, false},

		// Operations on read-only data need r or s on the type.
		{"system/Patient.r", "Patient", InteractionOperation, true},
		{"system/Patient.s", "Patient", InteractionOperation, true},
		{"system/Patient.cud", "Patient", InteractionOperation, false},
		{"system/Patient.rs", "Observation", InteractionOperation, false},
		{"system/*.rs", "", InteractionOperation, true},
		{"system/Patient.rs", "", InteractionOperation, false},

		// Query-narrowed scopes grant nothing the gateway cannot check.
		{"system/Observation.rs?category=laboratory", "Observation", InteractionSearchType, false},
		{"system/Observation.rs?category=laboratory", "Observation", InteractionRead, false},

		// v1 scopes.
		{"system/Patient.read", "Patient", InteractionRead, true},
		{"system/Patient.read", "Patient", InteractionSearchType, true},
		{"system/Patient.read", "Patient", InteractionUpdate, false},
		{"system/Patient.write", "Patient", InteractionUpdate, true},
		{"system/Patient.write", "Patient", InteractionRead, false},
		{"system/*.*", "Observation", InteractionDelete, true},
		{"system/*.*", "", InteractionSearchSystem, true},

		// user/ and patient/ scopes do not grant system access.
		{"user/Patient.rs", "Patient", InteractionRead, false},
		{"user/*.cruds", "Patient", InteractionRead, false},
		{"patient/*.rs", "Observation", InteractionSearchType, false},
		{"patient/Patient.read", "Patient", InteractionRead, false},
	}
	for _, tc := range tests {
		t.Run(tc.scope+"|"+tc.typ+"|"+tc.interaction, func(t *testing.T) {
			sc, err := ParseScope(tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.Allows(tc.typ, tc.interaction); got != tc.want {
				t.Errorf("Allows(%q, %q) = %v, want %v", tc.typ, tc.interaction, got, tc.want)
			}
			if got := ScopesAllow([]string{"openid", tc.scope, "launch"}, tc.typ, tc.interaction); got != tc.want {
				t.Errorf("ScopesAllow = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScopeString(t *testing.T) {
	for in, want := range map[string]string{
		"system/Patient.rs":            "system/Patient.rs",
		"system/Patient.read":          "system/Patient.rs",
		"system/*.write":               "system/*.cud",
		"system/*.*":                   "system/*.cruds",
		"system/Observation.rs?code=x": "system/Observation.rs?code=x",
	} {
		sc, err := ParseScope(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sc.String(); got != want {
			t.Errorf("ParseScope(%q).String() = %q, want %q", in, got, want)
		}
	}
}

func TestScopesAllowEmpty(t *testing.T) {
	if ScopesAllow(nil, "Patient", InteractionRead) {
		t.Error("no scopes allowed a read")
	}
}
