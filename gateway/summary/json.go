package summary

import (
	"bytes"
	"encoding/json"
)

// object is a resource or element as decoded JSON (numbers as json.Number,
// so decimals keep their precision).
type object = map[string]any

func decodeObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var o object
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	return o, nil
}

func getStr(o object, k string) string {
	s, _ := o[k].(string)
	return s
}

func getObj(o object, k string) object {
	m, _ := o[k].(map[string]any)
	return m
}

func getList(o object, k string) []any {
	l, _ := o[k].([]any)
	return l
}

func objects(v any) []object {
	l, _ := v.([]any)
	out := make([]object, 0, len(l))
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// canonical is a stable text form of a JSON value, for equality.
func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
