package telemetrytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// MinNeedle is the shortest needle ScanForPHI looks for; shorter strings
// ("M", "12") would match everywhere and prove nothing.
const MinNeedle = 3

// Finding is one place where a needle was found.
type Finding struct {
	// Where names the place: `span "authz.decide" attribute patient.name`,
	// `log line 3 key msg`, `metrics line 120`.
	Where string
	// Needle is the string that was found.
	Needle string
	// Text is the text it was found in, cut to 200 bytes.
	Text string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %q in %q", f.Where, f.Needle, f.Text)
}

// ScanForPHI searches exported spans, JSON log lines and a Prometheus text
// exposition for needles, case-insensitively, and returns every place one
// occurs. Span names, attributes (keys and values), event names and
// attributes, link attributes, status descriptions, the resource and the
// scope are searched; trace and span ids, timestamps and sample values are
// not (hex ids and numbers would match numeric needles by chance). Needles
// shorter than MinNeedle are ignored.
func ScanForPHI(spans tracetest.SpanStubs, logs, metrics []byte, needles []string) []Finding {
	s := scanner{}
	for _, n := range needles {
		n = strings.TrimSpace(n)
		if len(n) >= MinNeedle {
			s.needles = append(s.needles, strings.ToLower(n))
		}
	}
	sort.Strings(s.needles)
	s.needles = dedupe(s.needles)

	for _, sp := range spans {
		where := fmt.Sprintf("span %q", sp.Name)
		s.check(where+" name", sp.Name)
		s.attrs(where+" attribute", sp.Attributes)
		for _, ev := range sp.Events {
			s.check(where+" event name", ev.Name)
			s.attrs(where+" event "+ev.Name+" attribute", ev.Attributes)
		}
		for _, l := range sp.Links {
			s.attrs(where+" link attribute", l.Attributes)
		}
		s.check(where+" status description", sp.Status.Description)
		if sp.Resource != nil {
			s.attrs(where+" resource attribute", sp.Resource.Attributes())
		}
		s.check(where+" scope", sp.InstrumentationScope.Name)
	}

	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		s.logLine(n, sc.Bytes())
	}

	sc = bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			// Drop the sample value (and timestamp): only the name and
			// labels can carry data.
			if i := strings.LastIndex(line, "} "); i >= 0 {
				line = line[:i+1]
			} else if i := strings.IndexByte(line, ' '); i >= 0 {
				line = line[:i]
			}
		}
		s.check(fmt.Sprintf("metrics line %d", n), line)
	}
	return s.found
}

type scanner struct {
	needles []string
	found   []Finding
}

func (s *scanner) check(where, text string) {
	if text == "" {
		return
	}
	low := strings.ToLower(text)
	var uuids [][]int
	for _, n := range s.needles {
		if isDigits(n) && uuids == nil {
			uuids = uuidPattern.FindAllStringIndex(low, -1)
		}
		if contains(low, n, uuids) {
			if len(text) > 200 {
				text = text[:200]
			}
			s.found = append(s.found, Finding{Where: where, Needle: n, Text: text})
		}
	}
}

// uuidPattern finds UUIDs (decision ids, record ids), whose hex digits
// contain any short number by chance.
var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// contains reports whether needle n occurs in text. A needle of digits
// only (a birth year, a number identifier) counts only as a number of its
// own: not inside a longer run of letters and digits (a duration, a hex
// span id) nor inside a UUID, where such digits turn up by chance. Every
// other needle counts wherever it occurs.
func contains(text, n string, uuids [][]int) bool {
	if !isDigits(n) {
		return strings.Contains(text, n)
	}
	for from := 0; ; {
		i := strings.Index(text[from:], n)
		if i < 0 {
			return false
		}
		i += from
		j := i + len(n)
		from = i + 1
		if i > 0 && isAlnum(text[i-1]) || j < len(text) && isAlnum(text[j]) {
			continue
		}
		inUUID := false
		for _, u := range uuids {
			if i >= u[0] && j <= u[1] {
				inUUID = true
			}
		}
		if !inUUID {
			return true
		}
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (s *scanner) attrs(where string, attrs []attribute.KeyValue) {
	for _, kv := range attrs {
		w := where + " " + string(kv.Key)
		s.check(w+" (key)", string(kv.Key))
		s.check(w, kv.Value.String())
	}
}

// logLine scans a JSON log line key by key, leaving out the record time;
// a line that is not JSON is scanned whole.
func (s *scanner) logLine(n int, line []byte) {
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		s.check(fmt.Sprintf("log line %d", n), string(line))
		return
	}
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		where := fmt.Sprintf("log line %d key %s", n, k)
		s.check(where+" (key)", k)
		if k == "time" {
			continue
		}
		if n, ok := rec[k].(float64); ok {
			s.check(where, strconv.FormatFloat(n, 'f', -1, 64))
			continue
		}
		s.check(where, fmt.Sprint(rec[k]))
	}
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
