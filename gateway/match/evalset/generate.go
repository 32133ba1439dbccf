package evalset

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"

	"github.com/migrant-health/mhg/gateway/match"
)

// Options shape a generated set.
type Options struct {
	// Seed makes the set reproducible.
	Seed uint64
	// People is how many people are generated (namesakes and siblings
	// included). Zero means 3000.
	People int
}

// Person is one generated person: the truth the records are made from.
type Person struct {
	// ID labels the person; records of one person share it.
	ID int
	// Origin is the country of origin (ISO alpha-2).
	Origin string
	// Female, and the names in the script of the origin country.
	Female                bool
	Given, Father, Family string
	// given, father and family are the names drawn, with their Latin
	// spellings.
	given, father, family *name
	// Birth is the true birth date; DateKnown says whether the origin
	// country knows it to the day.
	Birth     match.Date
	DateKnown bool
	// Passport is a passport number, when the person has one.
	Passport string
}

// Record is one source's record of a person.
type Record struct {
	// Person is the ID of the person it describes.
	Person int
	// Source is the country whose source keeps it.
	Source string
	// Traits are what the record says.
	Traits match.Traits
}

// Set is a generated evaluation set.
type Set struct {
	People  []Person
	Records []Record
}

// weighted is a choice with a share.
type weighted[T any] struct {
	v T
	w float64
}

func choose[T any](rng *rand.Rand, list []weighted[T]) T {
	total := 0.0
	for _, c := range list {
		total += c.w
	}
	x := rng.Float64() * total
	for _, c := range list {
		if x < c.w {
			return c.v
		}
		x -= c.w
	}
	return list[len(list)-1].v
}

func pickName(rng *rand.Rand, list []name) *name {
	total := 0.0
	for _, n := range list {
		total += n.weight
	}
	x := rng.Float64() * total
	for i := range list {
		if x < list[i].weight {
			return &list[i]
		}
		x -= list[i].weight
	}
	return &list[len(list)-1]
}

// originShares weigh the populations: migrants from five countries and
// Germans, who are in the German source only.
var originShares = []weighted[string]{{"UA", 0.3}, {"RU", 0.1}, {"SY", 0.2}, {"AF", 0.12}, {"ER", 0.1}, {"SO", 0.08}, {"DE", 0.1}}

func populationOf(country string) *population {
	for _, p := range populations {
		if p.country == country {
			return p
		}
	}
	panic("evalset: no population " + country)
}

// Generate makes a labelled set: people, and their records in the sources
// of their country of origin, Germany and the Netherlands.
func Generate(opts Options) *Set {
	if opts.People <= 0 {
		opts.People = 3000
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	set := &Set{}
	for len(set.People) < opts.People {
		p := newPerson(rng, len(set.People), choose(rng, originShares))
		set.People = append(set.People, p)
		// Namesakes: another person with the same given and family names,
		// often born the same year; siblings: same family and father.
		switch x := rng.Float64(); {
		case x < 0.12 && len(set.People) < opts.People:
			q := newPerson(rng, len(set.People), p.Origin)
			q.Female, q.given, q.family, q.Given, q.Family = p.Female, p.given, p.family, p.Given, p.Family
			if rng.Float64() < 0.6 {
				q.Birth.Year = p.Birth.Year
			}
			// Another day: two people with one name born on the same day
			// cannot be told apart without an identifier, by any model.
			for q.Birth.Month == p.Birth.Month && q.Birth.Day == p.Birth.Day {
				q.Birth.Day = 1 + rng.IntN(28)
			}
			set.People = append(set.People, q)
		case x < 0.18 && len(set.People) < opts.People:
			q := newPerson(rng, len(set.People), p.Origin)
			q.family, q.Family, q.father, q.Father = p.family, p.Family, p.father, p.Father
			q.Birth.Year = p.Birth.Year + 1 + rng.IntN(4)
			q.DateKnown = p.DateKnown
			set.People = append(set.People, q)
		}
	}
	for _, p := range set.People {
		set.Records = append(set.Records, recordsOf(rng, p)...)
	}
	return set
}

func newPerson(rng *rand.Rand, id int, origin string) Person {
	pop := populationOf(origin)
	p := Person{ID: id, Origin: origin, Female: rng.IntN(2) == 0}
	if p.Female {
		p.given = pickName(rng, pop.female)
	} else {
		p.given = pickName(rng, pop.male)
	}
	p.father = pickName(rng, pop.male)
	if pop.familyIsFather {
		p.family = p.father
		if origin == "AF" && rng.Float64() < 0.5 {
			p.family = pickName(rng, pop.family)
		}
	} else {
		p.family = pickName(rng, pop.family)
	}
	p.Given, p.Father, p.Family = p.given.native, p.father.native, p.family.native
	if pop.feminine != nil && p.Female {
		p.Family = pop.feminine(p.Family)
	}
	p.Birth = match.Date{Year: 1950 + rng.IntN(60), Month: 1 + rng.IntN(12)}
	p.Birth.Day = 1 + rng.IntN(28)
	p.DateKnown = rng.Float64() >= pop.unknownDates
	if rng.Float64() < 0.35 {
		p.Passport = fmt.Sprintf("%c%c%06d", 'A'+rng.IntN(26), 'A'+rng.IntN(26), rng.IntN(1000000))
	}
	return p
}

// destinations are the countries migrants have records in besides their
// country of origin.
var destinations = []string{"DE", "NL"}

// recordsOf renders the person's records: in the country of origin (most
// people), Germany and the Netherlands, at least two in all for migrants.
func recordsOf(rng *rand.Rand, p Person) []Record {
	if p.Origin == "DE" {
		return []Record{render(rng, p, "DE")}
	}
	var out []Record
	if rng.Float64() < 0.85 {
		out = append(out, render(rng, p, p.Origin))
	}
	for _, d := range destinations {
		if rng.Float64() < 0.65 {
			out = append(out, render(rng, p, d))
		}
	}
	for len(out) < 2 {
		out = append(out, render(rng, p, destinations[len(out)%2]))
	}
	return out
}

// render writes the person's record as the source of country keeps it.
func render(rng *rand.Rand, p Person, country string) Record {
	pop := populationOf(p.Origin)
	home := country == p.Origin
	spell := func(nm *name, native string) string {
		switch {
		case home || p.Origin == "DE":
			return native
		case pop.cyrillic:
			return romanise(native, choose(rng, systemsFor(country, pop.ukrainian)))
		}
		// A spelling from the list: the first ones are the most used.
		ws := make([]weighted[string], len(nm.latin))
		for i, s := range nm.latin {
			ws[i] = weighted[string]{s, 1 / float64(i+1)}
		}
		return choose(rng, ws)
	}
	given := spell(p.given, p.Given)
	family := spell(p.family, p.Family)
	var father string
	switch {
	case pop.patronymic != nil:
		father = pop.patronymic(p.Father, p.Female)
		if !home {
			father = romanise(father, choose(rng, systemsFor(country, pop.ukrainian)))
		}
	case pop.familyIsFather && p.family == p.father:
		// The father's name is the family name; the grandfather's is
		// sometimes written as a further name at home.
		father = ""
	default:
		father = spell(p.father, p.Father)
	}
	t := match.Traits{Country: country, Sex: "male"}
	if p.Female {
		t.Sex = "female"
	}
	nm := match.Name{Family: family, Given: []string{given}}
	// Patronymics and fathers' names: always at home, often left out
	// abroad.
	if father != "" && (home || rng.Float64() < 0.3) {
		nm.Given = append(nm.Given, father)
	}
	if !home {
		if rng.Float64() < 0.08 {
			// Family and given names the other way round.
			nm.Family, nm.Given[0] = nm.Given[0], nm.Family
		}
		if rng.Float64() < 0.10 {
			if rng.IntN(2) == 0 {
				nm.Family = typo(rng, nm.Family)
			} else {
				nm.Given[0] = typo(rng, nm.Given[0])
			}
		}
	}
	t.Names = []match.Name{nm}
	t.BirthDate = birthDate(rng, p, home)
	if rng.Float64() < 0.05 {
		t.Sex = ""
	}
	if p.Origin != "DE" {
		if rng.Float64() < 0.5 {
			t.BirthPlace = p.Origin
		}
		if rng.Float64() < 0.5 {
			t.Citizenship = []string{p.Origin}
		}
	}
	if p.Passport != "" && rng.Float64() < 0.25 {
		t.Identifiers = []match.Identifier{{System: "http://hl7.org/fhir/sid/passport-" + p.Origin, Value: p.Passport}}
	}
	return Record{Person: p.ID, Source: country, Traits: t}
}

// birthDate writes the birth date as one source knows it.
func birthDate(rng *rand.Rand, p Person, home bool) match.Date {
	d := p.Birth
	if !p.DateKnown {
		// Estimated: a year, sometimes another year, written as a year or
		// as 1 January.
		if !home && rng.Float64() < 0.2 {
			d.Year += 1 - 2*rng.IntN(2)
		}
		if rng.Float64() < 0.5 {
			return match.Date{Year: d.Year}
		}
		return match.Date{Year: d.Year, Month: 1, Day: 1}
	}
	if home {
		return d
	}
	switch x := rng.Float64(); {
	case x < 0.08:
		return match.Date{Year: d.Year}
	case x < 0.12:
		return match.Date{Year: d.Year, Month: 1, Day: 1}
	case x < 0.14 && d.Day <= 12:
		d.Month, d.Day = d.Day, d.Month
	case x < 0.17:
		d.Day = 1 + (d.Day+rng.IntN(9))%28
	case x < 0.19:
		d.Year += 1 - 2*rng.IntN(2)
	}
	return d
}

// typo makes one typing error: a letter replaced, dropped, doubled, or
// two swapped.
func typo(rng *rand.Rand, s string) string {
	r := []rune(s)
	if len(r) < 4 {
		return s
	}
	i := 1 + rng.IntN(len(r)-2)
	switch rng.IntN(4) {
	case 0:
		repl := []rune("aeiourstnlm")
		c := repl[rng.IntN(len(repl))]
		if unicode.IsUpper(r[i]) {
			c = unicode.ToUpper(c)
		}
		r[i] = c
	case 1:
		r = append(r[:i], r[i+1:]...)
	case 2:
		r = append(r[:i+1], r[i:]...)
	default:
		r[i], r[i+1] = r[i+1], r[i]
	}
	return strings.TrimSpace(string(r))
}
