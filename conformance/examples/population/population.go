// Package population generates the synthetic population of the demo: people
// with sex, birth date, country of birth, citizenship, arrival, a
// refugee-screening answer, tuberculosis, diabetes and HIV diagnoses and
// measles-containing vaccinations, written as national FHIR R4 resources
// of one demo source's profile (de-basis, nl-core, ips, us-core). With
// Options.Routine a person also has routine care (consultations with vital
// signs, other vaccinations, hypertension and asthma): about eleven
// resources a person instead of one and a half, what benchmarks of whole
// populations read.
//
// Nothing is hand-written and nothing is random at run time: person i of a
// source is drawn from a PCG stream seeded with (Seed, i), so a population
// is reproducible from its seed, any person can be generated alone, and a
// larger population extends a smaller one. People returns the generated
// facts (the truth tests count from, without the measure engine); Write
// renders the resources.
package population

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// Options say which population to generate.
type Options struct {
	// Seed selects the population. Zero is a valid seed.
	Seed uint64
	// Patients is how many people.
	Patients int
	// Source is the source id; it seeds the stream with Seed and names the
	// identifier system, so that two sources never share people.
	Source string
	// Country is the source's ISO 3166-1 alpha-2 country.
	Country string
	// Profile is the national profile the resources are written to:
	// de-basis, nl-core, ips or us-core.
	Profile string
	// Routine adds each person's routine care: consultations over the
	// three years before Reference with body weight, body height and heart
	// rate, influenza, tetanus-diphtheria and hepatitis B vaccinations, and
	// hypertension and asthma diagnoses. That is about ten resources a
	// person instead of one and a half, none of them in a measure's value
	// sets. It is drawn from a stream of its own, so the other facts of a
	// person are the same with it or without.
	Routine bool
}

// Person is one generated person: the facts the resources are written from.
type Person struct {
	// Index is the person's number in the population.
	Index int
	// ID is the source's logical id of the Patient.
	ID string
	// Sex is the administrative gender: male, female or other.
	Sex string
	// BirthDate is YYYY-MM-DD, or YYYY when only the year is recorded, or
	// empty when it is unknown.
	BirthDate string
	// BirthCountry and Citizenship are ISO alpha-2 codes.
	BirthCountry, Citizenship string
	// Arrival is the date (YYYY-MM) of arrival for people born abroad.
	Arrival string
	// Screening is the answer to LOINC 93027-1 "Are you a refugee?": yes,
	// no, declined, or empty when the question was not asked.
	Screening string
	// Conditions are the person's diagnoses.
	Conditions []Condition
	// Vaccinations are measles-containing vaccine doses.
	Vaccinations []Vaccination
	// Visits are routine consultations (Options.Routine), oldest first.
	Visits []Visit
	// Vaccines are vaccinations other than measles-containing ones
	// (Options.Routine).
	Vaccines []Vaccine
}

// Visit is one consultation and the vital signs measured at it.
type Visit struct {
	// Date is YYYY-MM-DD.
	Date string
	// WeightKg is the body weight in kg (one decimal), HeightCm the body
	// height in cm, HeartRate the heart rate per minute.
	WeightKg  float64
	HeightCm  int
	HeartRate int
}

// Vaccine kinds besides measles-containing ones.
const (
	Influenza = "influenza"
	Td        = "td"
	HepB      = "hepb"
)

// Vaccine is one dose of a vaccine other than a measles-containing one.
type Vaccine struct {
	// Kind is Influenza, Td or HepB.
	Kind string
	// Date is YYYY-MM-DD.
	Date string
}

// Condition kinds.
const (
	TB       = "tb"
	Diabetes = "diabetes"
	HIV      = "hiv"
	// Hypertension and Asthma come with Options.Routine.
	Hypertension = "hypertension"
	Asthma       = "asthma"
)

// Condition is one diagnosis.
type Condition struct {
	// Kind is TB, Diabetes, HIV, Hypertension or Asthma.
	Kind string
	// Onset is YYYY-MM-DD, or YYYY-MM when only the month is recorded.
	Onset string
	// Abatement is the date it ended, or empty.
	Abatement string
	// Status is the clinical status: active or resolved.
	Status string
}

// Vaccination is one measles-containing vaccine dose.
type Vaccination struct {
	// Date is YYYY-MM-DD.
	Date string
	// Status is completed or not-done.
	Status string
}

// Reference is the day the population describes: births, onsets and
// vaccinations lie before it.
var Reference = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)

// Countries of birth of people born abroad, with weights: the origins of
// displacement and labour migration to the demo countries.
var origins = []struct {
	code   string
	weight int
	tbRisk int // per mille of active TB over the two years before Reference
}{
	{"SY", 14, 18}, {"AF", 10, 30}, {"UA", 16, 8}, {"TR", 10, 6}, {"ER", 6, 40},
	{"SO", 5, 45}, {"IQ", 6, 12}, {"MA", 7, 10}, {"NG", 5, 30}, {"VN", 4, 25},
	{"PL", 8, 3}, {"RO", 6, 5}, {"IN", 5, 35}, {"MX", 4, 6}, {"HN", 2, 8},
}

// stream returns person i's generator.
func stream(opts Options, i int) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(opts.Source))
	return rand.New(rand.NewPCG(opts.Seed^h.Sum64(), uint64(i)))
}

// People generates the population's facts.
func People(opts Options) []Person {
	out := make([]Person, opts.Patients)
	for i := range out {
		out[i] = Generate(opts, i)
	}
	return out
}

// Generate draws person i.
func Generate(opts Options, i int) Person {
	r := stream(opts, i)
	p := Person{Index: i, ID: fmt.Sprintf("syn-%s-%06d", opts.Source, i)}
	switch x := r.IntN(1000); {
	case x < 492:
		p.Sex = "female"
	case x < 995:
		p.Sex = "male"
	default:
		p.Sex = "other"
	}
	// Ages 0 to 89, with more children and young adults.
	age := r.IntN(90)
	if r.IntN(4) == 0 {
		age = r.IntN(6)
	}
	born := Reference.AddDate(-age, 0, -r.IntN(365))
	switch x := r.IntN(100); {
	case x < 3:
		p.BirthDate = "" // unknown
	case x < 8:
		p.BirthDate = born.Format("2006") // year only, as undocumented births often are
	default:
		p.BirthDate = born.Format(time.DateOnly)
	}
	migrant := r.IntN(100) < 40
	tbRisk := 2
	p.BirthCountry, p.Citizenship = opts.Country, opts.Country
	if migrant {
		total := 0
		for _, o := range origins {
			total += o.weight
		}
		x := r.IntN(total)
		for _, o := range origins {
			if x < o.weight {
				p.BirthCountry, tbRisk = o.code, o.tbRisk
				break
			}
			x -= o.weight
		}
		if p.BirthCountry == opts.Country {
			p.BirthCountry = "SY"
		}
		p.Citizenship = p.BirthCountry
		if r.IntN(100) < 20 {
			p.Citizenship = opts.Country // naturalised
		}
		earliest := max(born.Year(), 1990)
		year := earliest + r.IntN(Reference.Year()-earliest+1)
		p.Arrival = fmt.Sprintf("%04d-%02d", year, 1+r.IntN(12))
		if r.IntN(100) < 55 {
			switch x := r.IntN(100); {
			case x < 60:
				p.Screening = "yes"
			case x < 85:
				p.Screening = "no"
			default:
				p.Screening = "declined"
			}
		}
	}
	// Tuberculosis over the two years before Reference.
	if r.IntN(1000) < tbRisk {
		onset := Reference.AddDate(0, 0, -r.IntN(730))
		c := Condition{Kind: TB, Onset: onset.Format(time.DateOnly), Status: "active"}
		if r.IntN(100) < 30 {
			c.Status = "resolved"
			c.Abatement = onset.AddDate(0, 6+r.IntN(3), 0).Format(time.DateOnly)
			if !onset.AddDate(0, 9, 0).Before(Reference) {
				c.Status, c.Abatement = "active", ""
			}
		}
		if r.IntN(10) == 0 {
			c.Onset = onset.Format("2006-01")
		}
		p.Conditions = append(p.Conditions, c)
	}
	// Diabetes in adults, more often with age.
	if age >= 18 && r.IntN(1000) < 20+age*2 {
		onsetAge := 18 + r.IntN(age-17)
		onset := born.AddDate(onsetAge, r.IntN(12), 0)
		if onset.After(Reference) {
			onset = Reference.AddDate(0, -1, 0)
		}
		c := Condition{Kind: Diabetes, Onset: onset.Format(time.DateOnly), Status: "active"}
		if r.IntN(100) < 5 {
			ab := onset.AddDate(1+r.IntN(5), 0, 0)
			if ab.Before(Reference) {
				c.Status, c.Abatement = "resolved", ab.Format(time.DateOnly)
			}
		}
		p.Conditions = append(p.Conditions, c)
	}
	// HIV in adults, diagnosed over the three years before Reference.
	if age >= 15 && r.IntN(1000) < 12 {
		onset := Reference.AddDate(0, 0, -r.IntN(1095))
		p.Conditions = append(p.Conditions, Condition{Kind: HIV, Onset: onset.Format(time.DateOnly), Status: "active"})
	}
	// Measles-containing vaccine for children with a known birth day.
	if age <= 5 && len(p.BirthDate) == 10 {
		switch x := r.IntN(100); {
		case x < 85:
			d := born.AddDate(0, 11+r.IntN(5), r.IntN(28))
			if d.Before(Reference) {
				p.Vaccinations = append(p.Vaccinations, Vaccination{Date: d.Format(time.DateOnly), Status: "completed"})
			}
		case x < 92:
			d := born.AddDate(2, 1+r.IntN(10), 0)
			if d.Before(Reference) {
				p.Vaccinations = append(p.Vaccinations, Vaccination{Date: d.Format(time.DateOnly), Status: "completed"})
			}
		case x < 95:
			d := born.AddDate(1, 0, 0)
			if d.Before(Reference) {
				p.Vaccinations = append(p.Vaccinations, Vaccination{Date: d.Format(time.DateOnly), Status: "not-done"})
			}
		}
	}
	if opts.Routine {
		routine(opts, i, &p, age, born)
	}
	return p
}

// routine draws person i's routine care from a stream of its own.
func routine(opts Options, i int, p *Person, age int, born time.Time) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("routine/" + opts.Source))
	r := rand.New(rand.NewPCG(opts.Seed^h.Sum64(), uint64(i)))
	male := p.Sex == "male"
	// Adult height and weight are the person's; children grow.
	adultHeight := 150 + r.IntN(29)
	if male {
		adultHeight += 12
	}
	bmi := 19 + r.Float64()*12
	first := Reference.AddDate(-3, 0, 0)
	if born.After(first) {
		first = born
	}
	span := int(Reference.Sub(first).Hours() / 24)
	var dates []time.Time
	for range 1 + r.IntN(4) {
		dates = append(dates, first.AddDate(0, 0, r.IntN(span+1)))
	}
	slices.SortFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
	for _, d := range dates {
		years := d.Sub(born).Hours() / 24 / 365.25
		height := adultHeight
		if years < 18 {
			height = min(adultHeight, 50+int(years*6.5))
		}
		weight := bmi * float64(height) * float64(height) / 10000
		if years < 2 {
			weight = 3.5 + years*5
		}
		p.Visits = append(p.Visits, Visit{Date: d.Format(time.DateOnly), WeightKg: float64(int(weight*10)) / 10,
			HeightCm: height, HeartRate: 60 + r.IntN(40) + max(0, 12-int(years))*4})
	}
	// Hepatitis B at birth, one and six months for children born in the
	// last six years; tetanus-diphtheria within ten years for most adults;
	// influenza each season for the old and the chronically ill.
	if age <= 5 {
		for _, months := range []int{0, 1 + r.IntN(2), 6} {
			if d := born.AddDate(0, months, r.IntN(14)); d.Before(Reference) && r.IntN(100) < 90 {
				p.Vaccines = append(p.Vaccines, Vaccine{Kind: HepB, Date: d.Format(time.DateOnly)})
			}
		}
	}
	if age >= 18 && r.IntN(100) < 60 {
		p.Vaccines = append(p.Vaccines, Vaccine{Kind: Td, Date: Reference.AddDate(0, 0, -r.IntN(3650)).Format(time.DateOnly)})
	}
	chronic := false
	if age >= 30 && r.IntN(1000) < (age-25)*6 {
		onset := Reference.AddDate(0, 0, -r.IntN(365*min(age-29, 20)))
		p.Conditions = append(p.Conditions, Condition{Kind: Hypertension, Onset: onset.Format(time.DateOnly), Status: "active"})
		chronic = true
	}
	if r.IntN(100) < 7 {
		onset := born.AddDate(0, 0, r.IntN(max(1, int(Reference.Sub(born).Hours()/24))))
		p.Conditions = append(p.Conditions, Condition{Kind: Asthma, Onset: onset.Format(time.DateOnly), Status: "active"})
		chronic = true
	}
	if age >= 60 || chronic {
		for _, season := range []int{2023, 2024, 2025} {
			if r.IntN(100) < 70 {
				d := time.Date(season, time.October, 1+r.IntN(30), 0, 0, 0, 0, time.UTC).AddDate(0, r.IntN(2), 0)
				if d.Before(Reference) {
					p.Vaccines = append(p.Vaccines, Vaccine{Kind: Influenza, Date: d.Format(time.DateOnly)})
				}
			}
		}
	}
}
