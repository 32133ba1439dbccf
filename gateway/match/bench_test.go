package match

import "testing"

func BenchmarkCompare(b *testing.B) {
	m := Default()
	q := m.Prepare(Traits{Names: []Name{{Family: "Schewtschenko", Given: []string{"Olexandr", "Petrowitsch"}}}, BirthDate: Date{1980, 5, 3}, Sex: "male", Country: "DE"})
	c := m.Prepare(Traits{Names: []Name{{Family: "Шевченко", Given: []string{"Олександр", "Петрович"}}}, BirthDate: Date{1980, 5, 3}, Sex: "male", Country: "UA"})
	b.ReportAllocs()
	for b.Loop() {
		m.Compare(q, c)
	}
}
