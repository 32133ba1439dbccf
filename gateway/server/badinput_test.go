package server

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/config"
)

// badRequest is one request of the bad-input corpus.
type badRequest struct {
	name   string
	method string
	path   string // from the gateway root
	token  string // "clin", "auditor", "admin" or "" for none
	ctype  string
	body   string
	header map[string]string
	status int
}

// badInputCorpus is every route of the gateway (a well-formed sample of
// each, with the ids it needs) crossed with what a careless client or an
// attacker sends: malformed ids, search values and bodies, the wrong
// media types, headers and bodies over the bounds.
func badInputCorpus(pid string) []badRequest {
	var c []badRequest
	add := func(r badRequest) { c = append(c, r) }

	// Ids in the path: every route that takes one.
	badIDs := map[string]string{
		"dot-dot": "..", "dot-dot inside": "a..b/..", "NUL": "%00", "NUL inside": pid + "%00",
		"65 characters": strings.Repeat("a", 65), "unicode": "%C3%A9t%C3%A9", "escaped slash": "a%2Fb",
		"space": "a%20b", "underscore": "a_b",
	}
	for name, id := range badIDs {
		for _, route := range []struct{ method, path string }{
			{"GET", "/fhir/Patient/" + id},
			{"GET", "/fhir/Condition/" + id},
			{"GET", "/fhir/Patient/" + id + "/$everything"},
			{"GET", "/fhir/Patient/" + id + "/$summary"},
			{"POST", "/fhir/Patient/" + id + "/$summary"},
		} {
			status := 400
			switch name {
			case "dot-dot inside", "escaped slash":
				// Another path shape: no such route, or no such operation.
				status = 404
			case "dot-dot":
				// ".." is a well-formed FHIR id; it names nothing here.
				status = 404
			}
			add(badRequest{name: "id " + name, method: route.method, path: route.path, token: "clin", status: status})
		}
		search, forget := 400, 400
		if name == "dot-dot" {
			// An unknown patient has no resources; a cache holds nothing
			// about them.
			search, forget = 200, 404
		}
		add(badRequest{name: "id " + name, method: "GET", path: "/fhir/Condition?patient=" + id, token: "clin", status: search})
		add(badRequest{name: "id " + name, method: "POST", path: "/admin/cache/$forget-patient?patient=" + id, token: "admin", status: forget})
	}
	// Well-formed ids that name nothing: answered without asking a source.
	for _, id := range []string{"zz-nowhere.abc", "de-kbv.not-a-sealed-id", strings.Repeat("a", 64)} {
		add(badRequest{name: "unknown id", method: "GET", path: "/fhir/Patient/" + id, token: "clin", status: 404})
		add(badRequest{name: "unknown id", method: "GET", path: "/fhir/Observation/" + id, token: "clin", status: 404})
	}

	// Search values: repeated, empty, escaped, malformed.
	for name, q := range map[string]string{
		"repeated identifier":    "identifier=a|b&identifier=c|d",
		"empty identifier":       "identifier=",
		"identifier a|b|c":       "identifier=a|b|c",
		"identifier system only": "identifier=http://x|",
		"identifier bar only":    "identifier=|",
		"dangling escape":        "identifier=abc%5C",
		"escaped backslash only": "identifier=%5C%5C|",
		"NUL in identifier":      "identifier=a%00b",
		"newline in identifier":  "identifier=a%0Ab",
		"very long identifier":   "identifier=s|" + strings.Repeat("9", 2000),
		"OR search":              "identifier=a|b,c|d",
		"no identifier":          "_count=5",
		"negative _count":        "identifier=a|b&_count=-1",
		"text _count":            "identifier=a|b&_count=ten",
		"repeated _count":        "identifier=a|b&_count=1&_count=2",
		"_include":               "identifier=a|b&_include=Patient:organization",
		"_revinclude":            "identifier=a|b&_revinclude=Condition:subject",
		"_has":                   "identifier=a|b&_has:Condition:subject:code=x",
		"chain":                  "identifier=a|b&general-practitioner.name=x",
		"modifier":               "identifier:missing=true",
		"bad parameter name":     "identifier=a|b&%24x=1",
		"bad _elements":          "identifier=a|b&_elements=na%20me",
		"bad _total":             "identifier=a|b&_total=all",
	} {
		add(badRequest{name: name, method: "GET", path: "/fhir/Patient?" + q, token: "clin", status: 400})
	}
	add(badRequest{name: "unknown parameter, strict", method: "GET", path: "/fhir/Patient?identifier=a|b&nope=1", token: "clin",
		header: map[string]string{"Prefer": "handling=strict"}, status: 400})
	for name, q := range map[string]string{
		"repeated patient":      "patient=" + pid + "&patient=" + pid,
		"empty patient":         "patient=",
		"no patient":            "code=x",
		"subject not a Patient": "subject=Group/" + pid,
		"patient and subject":   "patient=" + pid + "&subject=Patient/" + pid,
	} {
		add(badRequest{name: name, method: "GET", path: "/fhir/Condition?" + q, token: "clin", status: 400})
	}
	for name, q := range map[string]string{
		"identifier a|b|c":    "identifier=a|b|c",
		"no identifier":       "",
		"repeated identifier": "identifier=a|b&identifier=a|b",
		"bad profile":         "identifier=a|b&profile=http://x",
	} {
		add(badRequest{name: "$summary " + name, method: "GET", path: "/fhir/Patient/$summary?" + q, token: "clin", status: 400})
	}
	for name, q := range map[string]string{
		"bad date":         "date=yesterday",
		"repeated patient": "patient=a&patient=b",
		"purpose a|b|c":    "purpose=a|b|c",
	} {
		add(badRequest{name: "AuditEvent " + name, method: "GET", path: "/fhir/AuditEvent?" + q, token: "auditor", status: 400})
	}
	add(badRequest{name: "$everything bad _count", method: "GET", path: "/fhir/Patient/" + pid + "/$everything?_count=x", token: "clin", status: 400})
	add(badRequest{name: "purge without source", method: "POST", path: "/admin/cache/$purge", token: "admin", status: 400})
	add(badRequest{name: "purge unknown source", method: "POST", path: "/admin/cache/$purge?source=..", token: "admin", status: 404})

	// Bodies: every route that reads one.
	bodies := []struct {
		name, ctype, body string
		status            int
	}{
		{"truncated JSON", "application/fhir+json", `{"resourceType":"Parameters","parameter":[`, 400},
		{"not an object", "application/fhir+json", `[1,2,3]`, 400},
		{"wrong resourceType", "application/fhir+json", `{"resourceType":"Nonsense"}`, 400},
		{"invalid FHIR", "application/fhir+json", `{"resourceType":"Patient","gender":5}`, 400},
		{"unicode garbage", "application/fhir+json", "{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}", 400},
		{"XML", "application/fhir+xml", `<Parameters xmlns="http://hl7.org/fhir"/>`, 415},
	}
	for _, b := range bodies {
		add(badRequest{name: "$summary " + b.name, method: "POST", path: "/fhir/Patient/$summary", token: "clin", ctype: b.ctype, body: b.body, status: b.status})
		add(badRequest{name: "$to-mhp " + b.name, method: "POST", path: "/fhir/$to-mhp?profile=de-basis", token: "clin", ctype: b.ctype, body: b.body, status: b.status})
		st := b.status
		if b.name == "XML" || b.name == "invalid FHIR" {
			st = 400 // $explain takes a policy input, not FHIR: either is not one
		}
		add(badRequest{name: "$explain " + b.name, method: "POST", path: "/admin/policy/$explain", token: "admin", ctype: b.ctype, body: b.body, status: st})
	}
	add(badRequest{name: "$to-mhp no profile", method: "POST", path: "/fhir/$to-mhp", token: "clin", ctype: "application/fhir+json",
		body: `{"resourceType":"Patient"}`, status: 400})
	add(badRequest{name: "$to-mhp unknown profile", method: "POST", path: "/fhir/$to-mhp?profile=..", token: "clin", ctype: "application/fhir+json",
		body: `{"resourceType":"Patient"}`, status: 400})
	add(badRequest{name: "$to-mhp Bundle with a broken entry", method: "POST", path: "/fhir/$to-mhp?profile=de-basis", token: "clin", ctype: "application/fhir+json",
		body: `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","birthDate":"yesterday"}}]}`, status: 400})
	big := `{"resourceType":"Parameters","parameter":[{"name":"identifier","valueString":"` + strings.Repeat("a", 80<<10) + `"}]}`
	add(badRequest{name: "$summary body too large", method: "POST", path: "/fhir/Patient/$summary", token: "clin", ctype: "application/fhir+json", body: big, status: 413})
	add(badRequest{name: "$explain body too large", method: "POST", path: "/admin/policy/$explain", token: "admin", body: big, status: 413})
	add(badRequest{name: "$to-mhp body too large", method: "POST", path: "/fhir/$to-mhp?profile=de-basis", token: "clin", ctype: "application/fhir+json",
		body: `{"resourceType":"Bundle","type":"collection","entry":[` + strings.Repeat(`{"resource":{"resourceType":"Basic"}},`, 40<<10) + `]}`, status: 413})

	// Headers and media types, on a route of each kind.
	for _, route := range []struct{ method, path, token string }{
		{"GET", "/fhir/metadata", ""},
		{"GET", "/fhir/Patient?identifier=a|b", "clin"},
		{"GET", "/fhir/Patient/" + pid, "clin"},
		{"GET", "/fhir/Patient/" + pid + "/$summary", "clin"},
		{"GET", "/fhir/AuditEvent", "auditor"},
		{"POST", "/fhir/$to-mhp?profile=de-basis", "clin"},
		{"POST", "/admin/cache/$purge?source=de-kbv", "admin"},
	} {
		add(badRequest{name: "headers too large", method: route.method, path: route.path, token: route.token,
			header: map[string]string{"X-Padding": strings.Repeat("p", 40<<10)}, status: 431})
		add(badRequest{name: "URI too long", method: route.method, path: route.path + strings.Repeat("&x=1", 9<<10), token: route.token, status: 414})
		add(badRequest{name: "two Authorization headers", method: route.method, path: route.path, token: route.token,
			header: map[string]string{"Authorization": "Bearer a, Bearer b"}, status: map[bool]int{true: 401, false: 200}[route.token != ""]})
		if route.method == "GET" {
			add(badRequest{name: "XML asked for", method: route.method, path: route.path, token: route.token,
				header: map[string]string{"Accept": "application/fhir+xml"}, status: 406})
			add(badRequest{name: "_format xml", method: route.method, path: route.path + map[bool]string{true: "&", false: "?"}[strings.Contains(route.path, "?")] + "_format=xml",
				token: route.token, status: 406})
		}
	}
	// Methods the gateway does not serve.
	for _, m := range []string{"PUT", "DELETE", "PATCH"} {
		add(badRequest{name: m, method: m, path: "/fhir/Patient/" + pid, token: "clin", status: 405})
	}
	add(badRequest{name: "POST a resource", method: "POST", path: "/fhir/Patient", token: "clin", ctype: "application/fhir+json", body: `{"resourceType":"Patient"}`, status: 405})
	add(badRequest{name: "unknown type", method: "GET", path: "/fhir/Nonsense?x=1", token: "clin", status: 404})
	add(badRequest{name: "lower-case type", method: "GET", path: "/fhir/patient/" + pid, token: "clin", status: 404})
	add(badRequest{name: "unknown operation", method: "GET", path: "/fhir/Patient/" + pid + "/$nonsense", token: "clin", status: 404})
	return c
}

// TestBadInputCorpus sends the corpus to a gateway over national FHIR
// servers and checks every answer: the status, an OperationOutcome (with an
// X-Request-Id), never a 5xx, and no request reaching a national source.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	de, nl, us, edit := nationalSources(t)
	g := startGateway(t, func(c *config.Config) {
		edit(c)
		c.Cache.Disabled = false // the admin routes purge it
		c.Server.MaxBodyBytes = 64 << 10
		c.ToMHP.MaxBundleBytes = 1 << 20
	}, Options{})
	tokens := map[string]string{
		"clin":    g.token(t, "DE", "clinician", "TREAT"),
		"auditor": g.token(t, "DE", "auditor", "HCOMPL"),
		"admin":   g.token(t, "DE", "admin", "HSYSADMIN"),
	}
	r := g.get(t, "/Patient?identifier="+aminaPassport, tokens["clin"])
	var pid string
	for _, p := range r.entries("match") {
		if id := p["id"].(string); strings.HasPrefix(id, "de-kbv.") {
			pid = id
		}
	}
	if pid == "" {
		t.Fatalf("no German patient: %s", r.body)
	}
	root := strings.TrimSuffix(g.base, "/fhir")
	requests := func() int64 { return de.requests.Load() + nl.requests.Load() + us.requests.Load() }
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	corpus := badInputCorpus(pid)
	for _, tc := range corpus {
		t.Run(tc.method+" "+tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, root+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tokens[tc.token])
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			before := requests()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%s %.120s: %d %s", tc.method, tc.path, resp.StatusCode, b)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("%s %.120s: %d, want %d: %.300s", tc.method, tc.path, resp.StatusCode, tc.status, b)
			}
			if n := requests() - before; n != 0 {
				t.Errorf("%s %.120s reached the national sources (%d requests)", tc.method, tc.path, n)
			}
			if resp.StatusCode == 200 {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("Content-Type %q, X-Request-Id %q", resp.Header.Get("Content-Type"), resp.Header.Get("X-Request-Id"))
			}
			if res, err := r4.Parse(b); err != nil || r4.TypeName(res) != "OperationOutcome" {
				t.Errorf("not an OperationOutcome (%v): %.300s", err, b)
			}
			if pid != "" && bytes.Contains(b, []byte("FT482913")) {
				t.Errorf("the answer quotes an identifier: %s", b)
			}
		})
	}
	if len(corpus) < 150 {
		t.Fatalf("the corpus shrank to %d requests", len(corpus))
	}
}
