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
