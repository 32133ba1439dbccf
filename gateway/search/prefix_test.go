package search

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestPrefixLaws checks every prefix on every date parameter of every
// type against the relations FHIR's definitions imply, over every test
// resource and a spread of partial and full search values: ne is the
// complement of eq; eq lies in ge, le and ap; gt lies in ge and lt in le;
// sa lies in gt and eb in lt; a resource without the element matches
// nothing (an occurrenceString has no date).
func TestPrefixLaws(t *testing.T) {
	all := loadResources(t)
	values := []string{"2012", "2015-03", "2019", "2019-06-15", "2020-07-04T07:30:00Z", "2021-02", "2022-09-30T16:00:00Z",
		"2023", "2023-11-20", "2024-01-10T09:00:00+01:00", "1990", "2100"}
	prefixes := []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
	checked := 0
	for _, typ := range Types() {
		for _, p := range Params(typ) {
			if p.Kind != Date {
				continue
			}
			for _, r := range all[typ] {
				has := false
				for _, l := range collect(r.m.ProtoReflect(), p.Paths) {
					_, ok := l.dateRange()
					has = has || ok
				}
				for _, v := range values {
					got := map[string]bool{}
					for _, pre := range prefixes {
						q := New(typ)
						if err := q.Parse(p.Name, "", pre+v); err != nil {
							t.Fatalf("%s %s=%s%s: %v", typ, p.Name, pre, v, err)
						}
						got[pre] = len(Apply(q, []res{r}, func(r res) proto.Message { return r.m })) == 1
					}
					name := fmt.Sprintf("%s/%s %s=%s", typ, r.id, p.Name, v)
					if !has {
						for pre, m := range got {
							if m {
								t.Errorf("%s: %s matches a resource without the element", name, pre)
							}
						}
						continue
					}
					checked++
					law := func(ok bool, what string) {
						if !ok {
							t.Errorf("%s: %s (%v)", name, what, got)
						}
					}
					law(got["eq"] != got["ne"], "ne is not the complement of eq")
					law(!got["eq"] || (got["ge"] && got["le"] && got["ap"]), "eq outside ge, le or ap")
					law(!got["gt"] || got["ge"], "gt outside ge")
					law(!got["lt"] || got["le"], "lt outside le")
					law(!got["sa"] || got["gt"], "sa outside gt")
					law(!got["eb"] || got["lt"], "eb outside lt")
					law(!(got["sa"] && got["eb"]), "both sa and eb")
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d combinations checked", checked)
	}
}
