package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Bundle serves the resources of a directory tree of FHIR files: *.json
// files holding a Bundle (collection, transaction, searchset, document, ...)
// or one resource, and *.ndjson files with one resource a line. Everything is
// read, rewritten (fullUrl references to Type/id), validated and indexed at
// Open; a directory with one bad file does not open at all. Afterwards it
// only reads memory and is safe for concurrent use.
//
// Search understands, for Patient, identifier (system|value, |value for no
// system, or a bare value in any system), _id, and the demographic
// parameters family, given, name, phonetic, birthdate and gender
// (demographics.go); for every other type,
// patient and subject (Patient/id or a bare id, matched against the
// resource's patient, subject or beneficiary reference) and _id. Values may
// be comma-separated alternatives; repeated parameters must all match.
// _count, _format and _pretty are accepted and ignored, since Search returns
// every match; any other parameter is refused with ErrRejected.
type Bundle struct {
	id, country, profile string

	all    []Resource
	byKey  map[string]int   // "Type/id"
	byType map[string][]int // load order
	// Patient identifiers: "system|value" (system "" when absent) and
	// "\x00value" for a value in any system.
	byIdentifier map[string][]int
	// "Type\x00patient id": resources of Type about that Patient.
	byPatient map[string][]int
	metrics   *instruments
	// Patients' names, birth dates and genders (demographics.go), and
	// Patients by the consonant skeletons of their names.
	demo         map[int]*demographics
	bySkeleton   map[string][]int
	patientMatch string
}

// OpenBundle reads and indexes the directory of a bundle source: the
// folder opts.BuiltinDir of opts.Builtin when set, else opts.Dir on disk.
// Files and folders whose names start with "." and files with other
// extensions are skipped.
func OpenBundle(opts Options) (*Bundle, error) {
	fsys, err := bundleFS(opts)
	if err != nil {
		return nil, err
	}
	var files []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := strings.HasPrefix(d.Name(), ".") && p != "."
		if d.IsDir() {
			if hidden {
				return fs.SkipDir
			}
			return nil
		}
		if !hidden && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".ndjson")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: reading %s: %w", opts.ID, opts.dirName(), err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("source %s: %s holds no .json or .ndjson files", opts.ID, opts.dirName())
	}

	// Validation dominates the load: files are parsed side by side, then
	// merged in file order so ids and search order do not depend on timing.
	parsed := make([][]Resource, len(files))
	errs := make([]error, len(files))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	memo := memoFor(opts)
	for i, name := range files {
		g.Go(func() error {
			if memo != nil {
				if rs, ok := memo.get(name); ok {
					parsed[i] = rs
					return nil
				}
			}
			data, err := fs.ReadFile(fsys, name)
			if err != nil {
				errs[i] = fmt.Errorf("file %s: %w", name, err)
				return nil
			}
			parsed[i], errs[i] = parseFile(name, data)
			if memo != nil && errs[i] == nil {
				memo.put(name, parsed[i])
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("source %s: %w", opts.ID, err)
	}

	metrics, err := newInstruments(opts.MeterProvider, opts.ID)
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		id: opts.ID, country: opts.Country, profile: opts.Profile, metrics: metrics, patientMatch: opts.PatientMatch,
		byKey:        map[string]int{},
		byType:       map[string][]int{},
		byIdentifier: map[string][]int{},
		byPatient:    map[string][]int{},
	}
	log := opts.logger().With(string(telemetry.AttrSourceID), opts.ID)
	from := map[int]string{}
	for fi, rs := range parsed {
		for _, r := range rs {
			key := r.Type + "/" + r.ID
			if prev, ok := b.byKey[key]; ok {
				if !bytes.Equal(b.all[prev].JSON, r.JSON) {
					// Ids are patient data: the log says which files clash, not what.
					log.Warn("bundle source: two files hold different resources with the same type and id; keeping the first",
						"type", r.Type, "first_file", from[prev], "file", files[fi])
				}
				continue
			}
			b.add(r)
			from[len(b.all)-1] = files[fi]
		}
	}
	log.Info("bundle source loaded", "files", len(files), "resources", len(b.all))
	return b, nil
}

// dirName names where a bundle source's files are, for errors.
func (o Options) dirName() string {
	if o.BuiltinDir != "" {
		return "built-in folder " + o.BuiltinDir
	}
	return o.Dir
}

func bundleFS(opts Options) (fs.FS, error) {
	if name := opts.BuiltinDir; name != "" {
		if opts.Builtin == nil {
			return nil, fmt.Errorf("source %s: built-in folder %s, but no data is built in", opts.ID, name)
		}
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("source %s: %q is not a built-in folder name", opts.ID, name)
		}
		sub, err := fs.Sub(opts.Builtin, name)
		if err != nil {
			return nil, fmt.Errorf("source %s: built-in folder %s: %w", opts.ID, name, err)
		}
		if _, err := fs.Stat(sub, "."); err != nil {
			return nil, fmt.Errorf("source %s: built-in folder %s: %w", opts.ID, name, err)
		}
		return sub, nil
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("source %s: dir is empty", opts.ID)
	}
	st, err := os.Stat(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", opts.ID, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source %s: %s is not a directory", opts.ID, opts.Dir)
	}
	return os.DirFS(opts.Dir), nil
}

// immutable is what a built-in file system says when its files never
// change while the process runs (conformance/examples.Builtin, with its
// generated population): what is parsed from it is then kept, so that the
// many gateways a test suite starts validate the demo data once.
type immutable interface {
	Immutable() bool
}

type memoKey struct {
	fsys      fs.FS
	dir, file string
}

// parsedBuiltin holds the parsed files of immutable built-in file systems.
var parsedBuiltin sync.Map // memoKey -> []Resource

type memo struct {
	fsys fs.FS
	dir  string
}

func memoFor(opts Options) *memo {
	im, ok := opts.Builtin.(immutable)
	if !ok || !im.Immutable() || opts.BuiltinDir == "" {
		return nil
	}
	return &memo{fsys: opts.Builtin, dir: opts.BuiltinDir}
}

func (m *memo) get(file string) ([]Resource, bool) {
	v, ok := parsedBuiltin.Load(memoKey{m.fsys, m.dir, file})
	if !ok {
		return nil, false
	}
	return v.([]Resource), true
}

func (m *memo) put(file string, rs []Resource) {
	parsedBuiltin.Store(memoKey{m.fsys, m.dir, file}, rs)
}

// indexFields are the members the search indexes read.
type indexFields struct {
	Identifier  json.RawMessage `json:"identifier"`
	Patient     json.RawMessage `json:"patient"`
	Subject     json.RawMessage `json:"subject"`
	Beneficiary json.RawMessage `json:"beneficiary"`
}

func (b *Bundle) add(r Resource) {
	i := len(b.all)
	b.all = append(b.all, r)
	b.byKey[r.Type+"/"+r.ID] = i
	b.byType[r.Type] = append(b.byType[r.Type], i)

	var f indexFields
	// The resource is valid R4; members of another shape than expected
	// (Composition.identifier is one object) are read as far as they go.
	_ = json.Unmarshal(r.JSON, &f)
	if r.Type == "Patient" {
		b.addDemographics(i, r.JSON)
		var ids []struct{ System, Value string }
		if json.Unmarshal(f.Identifier, &ids) == nil {
			for _, id := range ids {
				if id.Value == "" {
					continue
				}
				b.addUnique(b.byIdentifier, id.System+"|"+id.Value, i)
				b.addUnique(b.byIdentifier, "\x00"+id.Value, i)
			}
		}
		return
	}
	for _, raw := range []json.RawMessage{f.Patient, f.Subject, f.Beneficiary} {
		for _, ref := range references(raw) {
			if pid, ok := patientID(ref); ok {
				b.addUnique(b.byPatient, r.Type+"\x00"+pid, i)
			}
		}
	}
}

// addUnique appends i to m[k] unless it is already its last element (the
// same resource naming one patient in two members).
func (b *Bundle) addUnique(m map[string][]int, k string, i int) {
	l := m[k]
	if n := len(l); n > 0 && l[n-1] == i {
		return
	}
	m[k] = append(l, i)
}

// references reads the reference strings of a Reference or a list of them.
func references(raw json.RawMessage) []string {
	if isNull(raw) {
		return nil
	}
	var one struct{ Reference string }
	if json.Unmarshal(raw, &one) == nil {
		return []string{one.Reference}
	}
	var many []struct{ Reference string }
	if json.Unmarshal(raw, &many) == nil {
		out := make([]string, 0, len(many))
		for _, r := range many {
			out = append(out, r.Reference)
		}
		return out
	}
	return nil
}

// patientID takes the id out of "Patient/id", "[base]/Patient/id" or either
// with "/_history/v".
func patientID(ref string) (string, bool) {
	segs := strings.Split(ref, "/")
	if n := len(segs); n >= 4 && segs[n-2] == "_history" {
		segs = segs[:n-2]
	}
	n := len(segs)
	if n < 2 || segs[n-2] != "Patient" || segs[n-1] == "" {
		return "", false
	}
	return segs[n-1], true
}

// ID returns the configured source id.
func (b *Bundle) ID() string { return b.id }

// Country returns the source's ISO 3166-1 alpha-2 country code.
func (b *Bundle) Country() string { return b.country }

// Profile returns the national profile id of the source's resources.
func (b *Bundle) Profile() string { return b.profile }

// Len returns how many resources the source serves.
func (b *Bundle) Len() int { return len(b.all) }

// Check always succeeds: everything was read and validated at Open.
func (b *Bundle) Check(context.Context) error { return nil }

// Read returns the resource of that type and id, or an error wrapping
// ErrNotFound.
func (b *Bundle) Read(ctx context.Context, resourceType, id string) (Resource, error) {
	start := time.Now()
	r, err := b.read(ctx, resourceType, id)
	b.metrics.called(ctx, start, err)
	return r, err
}

func (b *Bundle) read(ctx context.Context, resourceType, id string) (Resource, error) {
	if err := ctx.Err(); err != nil {
		return Resource{}, fmt.Errorf("source %s: read %s: %w", b.id, resourceType, ctxError(ctx))
	}
	i, ok := b.byKey[resourceType+"/"+id]
	if !ok {
		return Resource{}, fmt.Errorf("source %s: read %s: %w", b.id, safeTypeName(resourceType), ErrNotFound)
	}
	return b.all[i], nil
}

// ignoredParams shape a page of results, not which resources match; Search
// returns them all.
var ignoredParams = map[string]bool{"_count": true, "_format": true, "_pretty": true}

// Search returns the resources of resourceType that match every parameter,
// in load order (files in lexical order, entries in file order). No
// parameter means every resource of the type.
func (b *Bundle) Search(ctx context.Context, resourceType string, params url.Values) ([]Resource, error) {
	start := time.Now()
	rs, err := b.search(ctx, resourceType, params)
	b.metrics.called(ctx, start, err)
	return rs, err
}

func (b *Bundle) search(ctx context.Context, resourceType string, params url.Values) ([]Resource, error) {
	hits, err := b.hits(ctx, resourceType, params)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(hits))
	for k, i := range hits {
		out[k] = b.all[i]
	}
	return out, nil
}

// Scan calls fn with every resource Search would return, in the same
// order, without gathering them: what a caller that reads a whole
// population (statistics) needs, since memory then holds one resource at a
// time beyond what the source holds anyway. An error from fn stops the
// scan and is returned as it is.
func (b *Bundle) Scan(ctx context.Context, resourceType string, params url.Values, fn func(Resource) error) error {
	start := time.Now()
	hits, err := b.hits(ctx, resourceType, params)
	b.metrics.called(ctx, start, err)
	if err != nil {
		return err
	}
	for n, i := range hits {
		if n%1024 == 0 && ctx.Err() != nil {
			return fmt.Errorf("source %s: search %s: %w", b.id, safeTypeName(resourceType), ctxError(ctx))
		}
		if err := fn(b.all[i]); err != nil {
			return err
		}
	}
	return nil
}

// hits returns the indexes (into b.all) of the resources a search
// matches, in load order.
func (b *Bundle) hits(ctx context.Context, resourceType string, params url.Values) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("source %s: search %s: %w", b.id, safeTypeName(resourceType), ctxError(ctx))
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	// Indexed parameters first: the scanned demographic ones then only
	// test what those found.
	scan := func(name string) bool { return resourceType == "Patient" && scanned[name] }
	sort.Slice(names, func(i, j int) bool {
		if si, sj := scan(names[i]), scan(names[j]); si != sj {
			return sj
		}
		return names[i] < names[j]
	})

	var hits []int
	filtered := false
	for _, name := range names {
		if ignoredParams[name] {
			continue
		}
		for _, v := range params[name] {
			if filtered && scan(name) {
				var err error
				if hits, err = b.filterDemographic(hits, name, v); err != nil {
					return nil, fmt.Errorf("source %s: search %s: %w", b.id, safeTypeName(resourceType), err)
				}
				continue
			}
			set, err := b.match(resourceType, name, v)
			if err != nil {
				return nil, fmt.Errorf("source %s: search %s: %w", b.id, safeTypeName(resourceType), err)
			}
			if !filtered {
				hits, filtered = set, true
			} else {
				hits = intersect(hits, set)
			}
		}
	}
	if !filtered {
		hits = b.byType[resourceType]
	}
	return hits, nil
}

// match returns, in load order, the resources of resourceType matching one
// value of one parameter (comma-separated alternatives).
func (b *Bundle) match(resourceType, name, value string) ([]int, error) {
	var set []int
	for _, alt := range r4.SplitEscaped(value, ',') {
		var hit []int
		switch {
		case name == "_id":
			if i, ok := b.byKey[resourceType+"/"+r4.Unescape(alt)]; ok {
				hit = []int{i}
			}
		case name == "identifier" && resourceType == "Patient":
			parts := r4.SplitEscaped(alt, '|')
			switch len(parts) {
			case 1:
				hit = b.byIdentifier["\x00"+r4.Unescape(parts[0])]
			case 2:
				hit = b.byIdentifier[r4.Unescape(parts[0])+"|"+r4.Unescape(parts[1])]
			default:
				return nil, fmt.Errorf("parameter identifier: more than one '|': %w", ErrRejected)
			}
		case resourceType == "Patient" && demographicParams[name]:
			var err error
			if hit, err = b.matchDemographic(name, alt); err != nil {
				return nil, err
			}
		case (name == "patient" || name == "subject") && resourceType != "Patient":
			ref := r4.Unescape(alt)
			if strings.Contains(ref, "/") {
				pid, ok := patientID(ref)
				if !ok {
					return nil, fmt.Errorf("parameter %s: only Patient references are supported: %w", name, ErrRejected)
				}
				ref = pid
			}
			hit = b.byPatient[resourceType+"\x00"+ref]
		default:
			return nil, fmt.Errorf("unsupported parameter %s: %w", safeParamName(name), ErrRejected)
		}
		set = union(set, hit)
	}
	return set, nil
}

// safeParamName quotes a parameter name for an error, cut short: names come
// from clients, values never reach an error.
func safeParamName(name string) string {
	if len(name) > 40 {
		name = name[:40] + "..."
	}
	return fmt.Sprintf("%q", name)
}

// union merges two ascending lists without duplicates.
func union(a, b []int) []int {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]int, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// intersect keeps what two ascending lists share.
func intersect(a, b []int) []int {
	var out []int
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
