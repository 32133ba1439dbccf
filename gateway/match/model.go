package match

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Field is a trait the model compares.
type Field string

// The fields, in the order a Result lists them.
const (
	FieldFamily      Field = "family"
	FieldGiven       Field = "given"
	FieldMiddle      Field = "middle"
	FieldBirthDate   Field = "birthDate"
	FieldSex         Field = "sex"
	FieldBirthPlace  Field = "birthPlace"
	FieldCitizenship Field = "citizenship"
	FieldIdentifier  Field = "identifier"
)

// Fields lists every field the model weighs.
var Fields = []Field{FieldFamily, FieldGiven, FieldMiddle, FieldBirthDate, FieldSex, FieldBirthPlace, FieldCitizenship, FieldIdentifier}

// Level is how far two values of a field agree.
type Level string

// Agreement levels. Names use Exact, Variant, Similar and Disagree; birth
// dates Exact, Near, Partial, Approximate and Disagree; the other fields
// Agree and Disagree. Missing (either side unknown) always weighs zero.
const (
	// Exact: the same name once transliterated and folded; the same date.
	Exact Level = "exact"
	// Variant: another romanisation or spelling of the same name (same
	// romanisation key or consonant skeleton), or one word of a compound.
	Variant Level = "variant"
	// Similar: names close by Jaro-Winkler similarity (a typing error).
	Similar Level = "similar"
	// Near: full dates one typing error apart, or day and month swapped.
	Near Level = "near"
	// Partial: dates that agree as far as the less precise one goes (a year,
	// a year and month, or a country's 1 January convention).
	Partial Level = "partial"
	// Approximate: partial dates a year apart, or the same year with other
	// months.
	Approximate Level = "approximate"
	// Agree and Disagree: the values are the same, or not.
	Agree    Level = "agree"
	Disagree Level = "disagree"
	// Missing: one side does not know.
	Missing Level = "missing"
)

// Grade is the match-grade of FHIR's match-grade extension.
type Grade string

// Grades, from most to least confident.
const (
	Certain      Grade = "certain"
	Probable     Grade = "probable"
	Possible     Grade = "possible"
	CertainlyNot Grade = "certainly-not"
)

// Grades lists the grades from most to least confident.
var Grades = []Grade{Certain, Probable, Possible, CertainlyNot}

// rank orders grades: 0 for certain.
func (g Grade) rank() int {
	if i := slices.Index(Grades, g); i >= 0 {
		return i
	}
	return len(Grades)
}

// AtLeast reports whether g is as confident as min or more.
func (g Grade) AtLeast(min Grade) bool { return g.rank() <= min.rank() }

// ParseGrade reads a grade code.
func ParseGrade(s string) (Grade, bool) {
	g := Grade(s)
	return g, slices.Contains(Grades, g)
}

// Probabilities are the m- and u-probabilities of one agreement level.
type Probabilities struct {
	// M is the probability of the level when the records are the same
	// person; U when they are not.
	M float64 `yaml:"m"`
	U float64 `yaml:"u"`
}

// Weight is log2(M/U): positive when the level is evidence for a match.
func (p Probabilities) Weight() float64 { return math.Log2(p.M / p.U) }

// Thresholds are the lowest total weights of each grade.
type Thresholds struct {
	Certain  float64 `yaml:"certain"`
	Probable float64 `yaml:"probable"`
	Possible float64 `yaml:"possible"`
}

// CountryModel adjusts the model for records kept in one country.
type CountryModel struct {
	// Note says why, for people.
	Note string `yaml:"note"`
	// Fields replace the probabilities of the levels they name.
	Fields map[Field]map[Level]Probabilities `yaml:"fields"`
	// ConventionDates replace the model's (month-day, "01-01").
	ConventionDates []string `yaml:"convention_dates"`
	// Orthography rewrites spellings of the country's own Latin
	// orthography before names are folded (Somali x for the sound others
	// write h): lower-case from -> to.
	Orthography map[string]string `yaml:"orthography"`
}

// Spec is a model as written in model.yaml.
type Spec struct {
	// Prior is the probability that a candidate pair is the same person
	// before any evidence; it turns a weight into search.score.
	Prior float64 `yaml:"prior"`
	// Thresholds grade a total weight.
	Thresholds Thresholds `yaml:"thresholds"`
	// ConventionDates are month-days ("01-01") that stand for an unknown
	// day and month.
	ConventionDates []string `yaml:"convention_dates"`
	// Fields hold every field's levels.
	Fields map[Field]map[Level]Probabilities `yaml:"fields"`
	// CommonNames are names shared by a large part of the population, with
	// that share: agreeing on them is weaker evidence (u is at least the
	// share).
	CommonNames map[string]float64 `yaml:"common_names"`
	// Countries adjust the model for records kept there (ISO alpha-2).
	Countries map[string]CountryModel `yaml:"countries"`
}

// Model is a loaded, validated model. It is immutable and safe for
// concurrent use.
type Model struct {
	spec      Spec
	base      *weights
	countries map[string]*weights
	common    map[string]float64
	priorLog  float64
}

// weights are the computed weights of one country (or the base).
type weights struct {
	prob        map[Field]map[Level]Probabilities
	w           map[Field]map[Level]float64
	conventions []monthDay
	orthography *strings.Replacer
}

//go:embed model.yaml
var defaultSpec []byte

// ErrModel is wrapped by every error about a model file.
var ErrModel = errors.New("invalid match model")

var defaultModel = func() *Model {
	m, err := ParseModel(defaultSpec)
	if err != nil {
		panic(err)
	}
	return m
}()

// Default returns the model built into the gateway (model.yaml).
func Default() *Model { return defaultModel }

// DefaultSpec returns the text of the built-in model, to start a tuned
// copy from.
func DefaultSpec() []byte { return slices.Clone(defaultSpec) }

// levelsOf are the levels each field must define.
var levelsOf = map[Field][]Level{
	FieldFamily:      {Exact, Variant, Similar, Disagree},
	FieldGiven:       {Exact, Variant, Similar, Disagree},
	FieldMiddle:      {Agree, Disagree},
	FieldBirthDate:   {Exact, Near, Partial, Approximate, Disagree},
	FieldSex:         {Agree, Disagree},
	FieldBirthPlace:  {Agree, Disagree},
	FieldCitizenship: {Agree, Disagree},
	FieldIdentifier:  {Agree, Disagree},
}

// ParseModel reads and validates a model in the shape of model.yaml.
// Every problem is reported; errors wrap ErrModel.
func ParseModel(b []byte) (*Model, error) {
	var spec Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !(spec.Prior > 0 && spec.Prior < 1) {
		bad("prior: want a probability between 0 and 1, got %v", spec.Prior)
	}
	t := spec.Thresholds
	if !(t.Certain > t.Probable && t.Probable > t.Possible) {
		bad("thresholds: want certain > probable > possible")
	}
	checkProbs := func(where string, levels map[Level]Probabilities, field Field) {
		for l, p := range levels {
			if !slices.Contains(levelsOf[field], l) {
				bad("%s.%s: field %s has no level %q", where, l, field, l)
			}
			if !(p.M > 0 && p.M <= 1 && p.U > 0 && p.U <= 1) {
				bad("%s.%s: m and u must be probabilities above 0", where, l)
			}
		}
	}
	for _, f := range Fields {
		levels := spec.Fields[f]
		for _, l := range levelsOf[f] {
			if _, ok := levels[l]; !ok {
				bad("fields.%s.%s: missing", f, l)
			}
		}
		checkProbs("fields."+string(f), levels, f)
	}
	for f := range spec.Fields {
		if _, ok := levelsOf[f]; !ok {
			bad("fields.%s: unknown field", f)
		}
	}
	for name, share := range spec.CommonNames {
		if !(share > 0 && share < 1) {
			bad("common_names.%s: want a share between 0 and 1", name)
		}
	}
	base, err := parseConventions(spec.ConventionDates)
	if err != nil {
		bad("convention_dates: %v", err)
	}
	m := &Model{spec: spec, countries: map[string]*weights{}, common: map[string]float64{}}
	m.base = compute(spec.Fields, nil, base, nil)
	for c, cm := range spec.Countries {
		if len(c) != 2 || strings.ToUpper(c) != c {
			bad("countries.%s: want an ISO 3166-1 alpha-2 code", c)
		}
		for f, levels := range cm.Fields {
			if _, ok := levelsOf[f]; !ok {
				bad("countries.%s.fields.%s: unknown field", c, f)
				continue
			}
			checkProbs("countries."+c+".fields."+string(f), levels, f)
		}
		conv := base
		if cm.ConventionDates != nil {
			if conv, err = parseConventions(cm.ConventionDates); err != nil {
				bad("countries.%s.convention_dates: %v", c, err)
			}
		}
		var orth *strings.Replacer
		if len(cm.Orthography) > 0 {
			keys := make([]string, 0, len(cm.Orthography))
			for k := range cm.Orthography {
				keys = append(keys, k)
			}
			// Longer spellings first, so that "dh" wins over "d".
			sort.Slice(keys, func(i, j int) bool {
				return len(keys[i]) > len(keys[j]) || len(keys[i]) == len(keys[j]) && keys[i] < keys[j]
			})
			var pairs []string
			for _, k := range keys {
				pairs = append(pairs, k, cm.Orthography[k])
			}
			orth = strings.NewReplacer(pairs...)
		}
		m.countries[c] = compute(spec.Fields, cm.Fields, conv, orth)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%w:\n  %s", ErrModel, strings.Join(problems, "\n  "))
	}
	for name, share := range spec.CommonNames {
		ws, _ := nameWords(name, nil)
		for _, w := range ws {
			m.common[foldWord(w, false).skel] = share
		}
	}
	m.priorLog = math.Log2(spec.Prior / (1 - spec.Prior))
	return m, nil
}

func parseConventions(list []string) ([]monthDay, error) {
	var out []monthDay
	for _, s := range list {
		mm, dd, ok := strings.Cut(s, "-")
		month, err1 := strconv.Atoi(mm)
		day, err2 := strconv.Atoi(dd)
		if !ok || err1 != nil || err2 != nil || month < 1 || month > 12 || day < 1 || day > daysIn(2000, month) {
			return nil, fmt.Errorf("%q is not a month-day such as 01-01", s)
		}
		out = append(out, monthDay{month, day})
	}
	return out, nil
}

func compute(base, over map[Field]map[Level]Probabilities, conv []monthDay, orth *strings.Replacer) *weights {
	w := &weights{prob: map[Field]map[Level]Probabilities{}, w: map[Field]map[Level]float64{}, conventions: conv, orthography: orth}
	for _, f := range Fields {
		w.prob[f] = map[Level]Probabilities{}
		w.w[f] = map[Level]float64{}
		for l, p := range base[f] {
			if o, ok := over[f][l]; ok {
				p = o
			}
			w.prob[f][l] = p
			w.w[f][l] = p.Weight()
		}
	}
	return w
}

// Spec returns the model as it was read.
func (m *Model) Spec() Spec { return m.spec }

// Weight returns the weight of a field's level for records kept in
// country ("" for the base model). Missing weighs 0.
func (m *Model) Weight(country string, f Field, l Level) float64 {
	return m.weightsFor(country).w[f][l]
}

func (m *Model) weightsFor(country string) *weights {
	if w, ok := m.countries[country]; ok {
		return w
	}
	return m.base
}

// Grade grades a total weight.
func (m *Model) Grade(total float64) Grade {
	t := m.spec.Thresholds
	switch {
	case total >= t.Certain:
		return Certain
	case total >= t.Probable:
		return Probable
	case total >= t.Possible:
		return Possible
	}
	return CertainlyNot
}

// Probability turns a total weight into the probability that the pair is
// the same person, given the model's prior (what search.score carries).
func (m *Model) Probability(total float64) float64 {
	return 1 / (1 + math.Exp2(-(total + m.priorLog)))
}
