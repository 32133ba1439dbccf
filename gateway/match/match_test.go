package match

import (
	"errors"
	"strings"
	"testing"
)

// Spellings of one name must agree at the level given; different names
// must not.
func TestCompareWord(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want Level
	}{
		{"cyrillic and its passport romanisation", "Олександр", "Oleksandr", Exact},
		{"ukrainian passport and german", "Shevchenko", "Schewtschenko", Variant},
		{"french", "Shevchenko", "Chevtchenko", Variant},
		{"dutch", "Shevchenko", "Sjevtsjenko", Variant},
		{"polish", "Shevchenko", "Szewczenko", Variant},
		{"iso 9 with diacritics", "Ševčenko", "Шевченко", Exact},
		{"iotated vowels", "Yurii", "Joeri", Variant},
		{"russian and ukrainian forms", "Aleksandr", "Oleksandr", Variant},
		{"ukrainian h for russian g", "Hanna", "Ganna", Variant},
		{"arabic script and english", "محمد", "Mohammed", Variant},
		{"arabic spellings", "Muhammad", "Mohamad", Variant},
		{"short arabic name", "علي", "Ali", Variant},
		{"article", "Al-Khatib", "Khatib", Exact},
		{"article in arabic script", "الخطيب", "Khatib", Variant},
		{"abd compound", "Abdul Rahman", "Abdelrahman", Variant},
		{"abd compound in arabic script", "عبد الرحمن", "Abd al-Rahman", Variant},
		{"geez", "ተስፋይ", "Tesfay", Variant},
		{"geez compound", "ገብረማርያም", "Gebre Mariam", Variant},
		{"silent final h", "Fatimah", "Fatima", Variant},
		{"typing error", "Kovalenko", "Kovalemko", Similar},
		{"different names", "Shevchenko", "Kovalenko", Disagree},
		{"different arabic names", "محمد", "Ahmed", Disagree},
		{"different tigrinya names", "ተስፋይ", "Yohannes", Disagree},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := prepareWords(tc.a, nil), prepareWords(tc.b, nil)
			if got := compareWords(a, b); got != tc.want {
				t.Errorf("%s vs %s: %s, want %s", tc.a, tc.b, got, tc.want)
			}
			if got := compareWords(b, a); got != tc.want {
				t.Errorf("%s vs %s (reversed): %s, want %s", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

func TestSomaliOrthography(t *testing.T) {
	m := Default()
	so := m.Prepare(Traits{Names: []Name{{Family: "Cabdi", Given: []string{"Maxamed"}}}, Country: "SO"})
	de := m.Prepare(Traits{Names: []Name{{Family: "Abdi", Given: []string{"Mohamed"}}}, Country: "DE"})
	r := m.Compare(de, so)
	if r.Level(FieldFamily) != Variant && r.Level(FieldFamily) != Exact || r.Level(FieldGiven) != Variant {
		t.Errorf("Cabdi Maxamed (SO) vs Abdi Mohamed: %v", r.Levels)
	}
	// Without the Somali rules (a German record), x is not h.
	de2 := m.Prepare(Traits{Names: []Name{{Family: "Cabdi", Given: []string{"Maxamed"}}}, Country: "DE"})
	if r := m.Compare(de, de2); r.Level(FieldGiven) == Variant {
		t.Errorf("Maxamed in a German record matched Mohamed as a variant: %v", r.Levels)
	}
}

func TestCompareDates(t *testing.T) {
	jan1 := []monthDay{{1, 1}}
	d := func(s string) Date {
		t.Helper()
		x, err := ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	tests := []struct {
		a, b string
		want Level
	}{
		{"1990-05-17", "1990-05-17", Exact},
		{"1990-05-07", "1990-07-05", Near},
		{"1990-05-17", "1990-05-18", Near},
		{"1990-05-17", "1991-05-17", Near},
		{"1990-05-17", "1990-05-29", Partial},
		{"1990-05-17", "1990", Partial},
		{"1990-05-17", "1990-05", Partial},
		{"1990-05-17", "1990-01-01", Partial},
		{"1990-01-01", "1990-01-01", Partial},
		{"1990", "1991", Approximate},
		{"1990-05", "1990-06", Approximate},
		{"1990-05-17", "1985-02-03", Disagree},
		{"1990", "1980", Disagree},
		{"1990-05-17", "", Missing},
	}
	for _, tc := range tests {
		var a, b Date
		a = d(tc.a)
		if tc.b != "" {
			b = d(tc.b)
		}
		if got := compareDates(a, b, jan1, jan1); got != tc.want {
			t.Errorf("%s vs %s: %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
	// Where 1 January is no convention, it is a date like any other.
	if got := compareDates(d("1990-01-01"), d("1990-01-01"), nil, nil); got != Exact {
		t.Errorf("1 January without the convention: %s, want exact", got)
	}
}

func TestParseDate(t *testing.T) {
	good := map[string]Date{
		"1990": {1990, 0, 0}, "1990-05": {1990, 5, 0}, "1990-05-17": {1990, 5, 17},
		"2000-02-29": {2000, 2, 29}, "1990-05-17T10:00:00Z": {1990, 5, 17},
	}
	for s, want := range good {
		got, err := ParseDate(s)
		if err != nil || got != want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != s[:min(len(s), 10)] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, s := range []string{"", "90", "1990-13", "1990-02-30", "1900-02-29", "1990/05/17", "199O", "1990-5-17", "+990"} {
		if _, err := ParseDate(s); !errors.Is(err, ErrDate) {
			t.Errorf("ParseDate(%q): %v, want ErrDate", s, err)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"1990", "1990-05", "1990-05-17", "1990-05-17T00:00:00Z", "2000-02-29"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if err.Error() != ErrDate.Error() {
				t.Fatalf("the error says more than ErrDate (it may quote the value): %v", err)
			}
			return
		}
		again, err := ParseDate(d.String())
		if err != nil || again != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, d.String(), again, err)
		}
	})
}

// FuzzPrepare feeds names in any script and shape through folding and
// comparison: nothing may panic, and a record agrees with itself.
func FuzzPrepare(f *testing.F) {
	for _, s := range []string{"Шевченко", "عبد الرحمن", "ገብረመድህን", "Al-Khatib", "O'Brien", "", "  ", "ŝŝŝ", "\x00\xff"} {
		f.Add(s, "Oleksandr")
	}
	m := Default()
	f.Fuzz(func(t *testing.T, family, given string) {
		r := m.Prepare(Traits{Names: []Name{{Family: family, Given: []string{given, family}}}, Country: "SO"})
		res := m.Compare(r, r)
		for i, l := range res.Levels[:3] {
			if l == Disagree {
				t.Fatalf("%s disagrees with itself for %q %q", Fields[i], family, given)
			}
		}
	})
}

func TestGrades(t *testing.T) {
	m := Default()
	base := Traits{Names: []Name{{Family: "Шевченко", Given: []string{"Олександр", "Петрович"}}},
		BirthDate: Date{1980, 5, 3}, Sex: "male", BirthPlace: "UA", Country: "UA"}
	q := m.Prepare(base)
	tests := []struct {
		name string
		c    Traits
		want Grade
	}{
		{"another romanisation, same full date", Traits{Names: []Name{{Family: "Schewtschenko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{1980, 5, 3}, Sex: "male", Country: "DE"}, Certain},
		{"names swapped", Traits{Names: []Name{{Family: "Oleksandr", Given: []string{"Shevchenko"}}},
			BirthDate: Date{1980, 5, 3}, Sex: "male", Country: "DE"}, Certain},
		{"year only: a namesake cannot be ruled out", Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{Year: 1980}, Sex: "male", Country: "DE"}, Probable},
		{"1 January stands for the year", Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{1980, 1, 1}, Sex: "male", Country: "DE"}, Probable},
		{"a typing error in the name", Traits{Names: []Name{{Family: "Shevcherko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{1980, 5, 3}, Sex: "male", Country: "DE"}, Probable},
		{"another person", Traits{Names: []Name{{Family: "Kovalenko", Given: []string{"Andrii"}}},
			BirthDate: Date{1975, 2, 11}, Sex: "male", Country: "DE"}, CertainlyNot},
		{"same name, other birth date", Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{1961, 9, 23}, Sex: "male", Country: "DE"}, CertainlyNot},
		{"a shared passport with a year of birth", Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}},
			BirthDate: Date{Year: 1980}, Sex: "male", Country: "DE",
			Identifiers: []Identifier{{"http://hl7.org/fhir/sid/passport-UKR", "FT 482913"}}}, Probable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := m.Compare(q, m.Prepare(tc.c))
			if r.Grade != tc.want {
				t.Errorf("grade %s (weight %.1f, %v), want %s", r.Grade, r.Weight, r.Levels, tc.want)
			}
			if r.Score < 0 || r.Score > 1 {
				t.Errorf("score %v outside [0,1]", r.Score)
			}
		})
	}
	// A shared identifier on both sides lifts the year-only pair.
	withID := base
	withID.Identifiers = []Identifier{{"http://hl7.org/fhir/sid/passport-UKR", "FT482913"}}
	c := Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}}, BirthDate: Date{Year: 1980}, Sex: "male",
		Country: "DE", Identifiers: []Identifier{{"http://hl7.org/fhir/sid/passport-UKR", "FT 482913"}}}
	if r := m.Compare(m.Prepare(withID), m.Prepare(c)); r.Grade != Certain {
		t.Errorf("shared passport: %s (%.1f, %v), want certain", r.Grade, r.Weight, r.Levels)
	}
}

func TestCommonNamesWeighLess(t *testing.T) {
	m := Default()
	if common, rare := m.nameWeight(m.base, FieldGiven, Variant, prepareWords("Mohammed", nil).ws),
		m.nameWeight(m.base, FieldGiven, Variant, prepareWords("Basel", nil).ws); common >= rare {
		t.Errorf("agreeing on Mohammed weighs %.2f, on Basel %.2f; a common name must weigh less", common, rare)
	}
}

func TestParseModel(t *testing.T) {
	if _, err := ParseModel(DefaultSpec()); err != nil {
		t.Fatalf("built-in model: %v", err)
	}
	bad := []struct {
		name, edit, want string
	}{
		{"prior out of range", "prior: 0.01", "prior: 1.5"},
		{"thresholds out of order", "certain: 14", "certain: 2"},
		{"missing level", "    similar:  {m: 0.04,  u: 0.016}   # a typing error\n", ""},
		{"unknown level", "    similar:  {m: 0.04,  u: 0.016}", "    close:  {m: 0.04,  u: 0.016}"},
		{"zero u", "{m: 0.97,  u: 0.000001}", "{m: 0.97,  u: 0}"},
		{"bad convention date", `convention_dates: ["01-01"]`, `convention_dates: ["02-30"]`},
		{"bad country", "  ER:\n", "  Eritrea:\n"},
		{"unknown key", "prior: 0.01", "prior: 0.01\npriors: 2"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			src := string(DefaultSpec())
			if !strings.Contains(src, tc.edit) {
				t.Fatalf("model.yaml no longer holds %q", tc.edit)
			}
			_, err := ParseModel([]byte(strings.Replace(src, tc.edit, tc.want, 1)))
			if !errors.Is(err, ErrModel) {
				t.Errorf("got %v, want ErrModel", err)
			}
		})
	}
}

func TestGradeOrder(t *testing.T) {
	if !Certain.AtLeast(Probable) || Possible.AtLeast(Probable) || !Probable.AtLeast(Probable) || CertainlyNot.AtLeast(Possible) {
		t.Error("AtLeast does not follow certain > probable > possible > certainly-not")
	}
	if g, ok := ParseGrade("probable"); !ok || g != Probable {
		t.Error("ParseGrade(probable)")
	}
	if _, ok := ParseGrade("likely"); ok {
		t.Error("ParseGrade accepted an unknown grade")
	}
}

func TestKindsAndOnly(t *testing.T) {
	full := Traits{Names: []Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}}, BirthDate: Date{Year: 1980},
		Sex: "male", BirthPlace: "UA", Citizenship: []string{"UA"}, Identifiers: []Identifier{{"s", "v"}}, Country: "DE"}
	if got := strings.Join(full.Kinds(), ","); got != "birthDate,birthPlace,citizenship,family,gender,given,identifier" {
		t.Errorf("Kinds = %s", got)
	}
	only := full.Only([]string{KindFamily, KindBirthDate})
	if got := strings.Join(only.Kinds(), ","); got != "birthDate,family" {
		t.Errorf("Only(family, birthDate).Kinds = %s", got)
	}
	if only.Sex != "" || only.BirthPlace != "" || len(only.Identifiers) > 0 || len(only.Names[0].Given) > 0 {
		t.Errorf("Only kept more than asked: %+v", only)
	}
	if got := (Traits{}).Kinds(); len(got) != 0 {
		t.Errorf("empty traits have kinds %v", got)
	}
}
