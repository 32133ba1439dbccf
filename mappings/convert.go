package mappings

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
)

// ConvertOptions configure Convert. Profile, Inputs and OutDir are
// required.
type ConvertOptions struct {
	// Profile is the national profile id of every input.
	Profile string
	// Inputs are files: *.ndjson (one resource per line) or *.json (a
	// Bundle, whose entries are converted, or a single resource).
	Inputs []string
	// OutDir receives one NDJSON file per resource type, <Type>.ndjson;
	// class S outputs go to <Type>.restricted.ndjson, the loss report to
	// OperationOutcome.ndjson. It is created when missing.
	OutDir string
	// Progress is moved over the input bytes (a terminal progress bar, as
	// mhg map draws one). Nil: no progress.
	Progress Progress
	// Map are the per-resource mapping options. Zero: upstream ids kept,
	// religion dropped. ResolveReference is set by Convert for Bundles
	// (urn:uuid and absolute fullUrls become Type/id) unless given.
	Map Options
	// Provenance also writes Provenance.ndjson, one per output.
	Provenance bool
}

// Progress is told the size of the inputs, each read, and the end.
type Progress interface {
	ChangeMax64(total int64)
	Add(n int) error
	Finish() error
}

// Stats count what Convert did.
type Stats struct {
	// Files is the number of input files read.
	Files int
	// Read is the number of input resources.
	Read int
	// Written is the number of MHP resources written (Provenance not
	// counted).
	Written int
	// Sensitive is how many of those are class S.
	Sensitive int
	// Skipped counts inputs not written: invalid R4 or not mappable.
	Skipped int
	// Issues is the number of loss-report issues.
	Issues int
	// ByType counts written resources per output file name.
	ByType map[string]int
	// Files written, relative to OutDir, sorted.
	Outputs []string
}

// ErrConvert is wrapped by Convert errors that stop the conversion (an
// unreadable or malformed input file, a write failure). No output file is
// left behind then: outputs are written to temporary files and renamed
// only when every input was read.
var ErrConvert = errors.New("conversion failed")

// Convert maps national exports offline (mhg map): it streams the inputs,
// validates each resource as R4, maps it and writes NDJSON per type. A
// resource that is invalid or not mappable is skipped and reported in the
// loss report; a file that cannot be read or parsed stops the conversion
// with no output written.
func Convert(ctx context.Context, e *Engine, o ConvertOptions) (st Stats, err error) {
	if _, ok := e.plans[o.Profile]; !ok {
		return st, fmt.Errorf("%w: %q", ErrUnknownProfile, o.Profile)
	}
	if o.OutDir == "" || len(o.Inputs) == 0 {
		return st, fmt.Errorf("%w: inputs and an output directory are required", ErrConvert)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return st, fmt.Errorf("%w: %v", ErrConvert, err)
	}
	c := &converter{e: e, o: o, outs: map[string]*tempOut{}, st: Stats{ByType: map[string]int{}}}
	defer func() {
		if err != nil {
			c.abort()
		}
	}()
	var total int64
	for _, in := range o.Inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return c.st, fmt.Errorf("%w: %v", ErrConvert, err)
		}
		total += fi.Size()
	}
	if o.Progress != nil {
		c.bar = o.Progress
		c.bar.ChangeMax64(total)
	}
	for _, in := range o.Inputs {
		if err := ctx.Err(); err != nil {
			return c.st, fmt.Errorf("%w: %v", ErrConvert, err)
		}
		if err := c.file(ctx, in); err != nil {
			return c.st, err
		}
		c.st.Files++
	}
	if err := c.commit(); err != nil {
		return c.st, err
	}
	if c.bar != nil {
		_ = c.bar.Finish()
	}
	return c.st, nil
}

type converter struct {
	e    *Engine
	o    ConvertOptions
	outs map[string]*tempOut
	st   Stats
	bar  Progress
}

// tempOut is one output file being written under a temporary name.
type tempOut struct {
	name string
	f    *os.File
	w    *bufio.Writer
}

// countingReader moves the progress bar as input bytes are read.
type countingReader struct {
	r   io.Reader
	bar Progress
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.bar != nil && n > 0 {
		_ = c.bar.Add(n)
	}
	return n, err
}

func (c *converter) file(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConvert, err)
	}
	defer f.Close()
	base := filepath.Base(path)
	var r io.Reader = bufio.NewReaderSize(countingReader{f, c.bar}, 1<<16)
	if strings.HasSuffix(path, ".ndjson") {
		return c.ndjson(ctx, base, r)
	}
	refs, err := bundleReferences(path)
	if err != nil {
		return err
	}
	return streamJSON(r, func(i int, _ string, res []byte) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %v", ErrConvert, err)
		}
		return c.resource(fmt.Sprintf("%s entry %d", base, i), res, refs)
	}, base)
}

func (c *converter) ndjson(ctx context.Context, base string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%w: %v", ErrConvert, err)
			}
			if cerr := c.resource(fmt.Sprintf("%s line %d", base, line), bytes.TrimSpace(b), nil); cerr != nil {
				return cerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConvert, base, err)
		}
	}
}

// streamJSON reads one JSON document: the entries of a Bundle are handed
// to fn one at a time without holding the whole Bundle; any other resource
// is handed whole.
func streamJSON(r io.Reader, fn func(i int, fullURL string, res []byte) error, name string) error {
	dec := json.NewDecoder(r)
	fail := func(err error) error { return fmt.Errorf("%w: %s: malformed JSON: %v", ErrConvert, name, err) }
	if t, err := dec.Token(); err != nil {
		return fail(err)
	} else if d, ok := t.(json.Delim); !ok || d != '{' {
		return fail(errors.New("not a JSON object"))
	}
	fields := map[string]json.RawMessage{}
	entries := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := t.(string)
		if key != "entry" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return fail(err)
			}
			fields[key] = v
			continue
		}
		if t, err := dec.Token(); err != nil {
			return fail(err)
		} else if d, ok := t.(json.Delim); !ok || d != '[' {
			return fail(errors.New("entry is not an array"))
		}
		for dec.More() {
			var e struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			}
			if err := dec.Decode(&e); err != nil {
				return fail(err)
			}
			if len(e.Resource) > 0 {
				if err := fn(entries, e.FullURL, e.Resource); err != nil {
					return err
				}
			}
			entries++
		}
		if _, err := dec.Token(); err != nil {
			return fail(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(errors.New("data after the JSON document"))
	}
	var rt string
	_ = json.Unmarshal(fields["resourceType"], &rt)
	if rt == "Bundle" {
		return nil
	}
	whole, err := json.Marshal(fields)
	if err != nil {
		return fail(err)
	}
	return fn(0, "", whole)
}

// bundleReferences reads a Bundle's fullUrls (a first, streaming pass), so
// that references to urn:uuid and absolute fullUrls become Type/id.
func bundleReferences(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	refs := map[string]string{}
	err = streamJSON(bufio.NewReaderSize(f, 1<<16), func(_ int, fullURL string, res []byte) error {
		if fullURL == "" {
			return nil
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(res, &head) == nil && head.ResourceType != "" && head.ID != "" {
			refs[fullURL] = head.ResourceType + "/" + head.ID
		}
		return nil
	}, filepath.Base(path))
	return refs, err
}

func (c *converter) resource(where string, in []byte, refs map[string]string) error {
	c.st.Read++
	opts := c.o.Map
	if opts.ResolveReference == nil && len(refs) > 0 {
		opts.ResolveReference = func(ref string) (string, bool) {
			r, ok := refs[ref]
			return r, ok
		}
	}
	if _, err := r4.Parse(in); err != nil {
		c.st.Skipped++
		return c.report(where, "", []Issue{{Severity: sevError, Code: "structure", Message: "not a valid FHIR R4 resource; skipped"}}, err.Error())
	}
	res, err := c.e.Map(c.o.Profile, in, opts)
	if err != nil {
		c.st.Skipped++
		return c.report(where, "", []Issue{{Severity: sevError, Code: codeNotSupported, Message: err.Error()}}, "")
	}
	upstream := ""
	for _, out := range res.Outputs {
		if upstream == "" {
			upstream = out.Type + "/" + out.UpstreamID
		}
		name := out.Type + ".ndjson"
		if out.Class == ClassSensitive {
			name = out.Type + ".restricted.ndjson"
			c.st.Sensitive++
		}
		if err := c.write(name, out.JSON); err != nil {
			return err
		}
		c.st.Written++
		c.st.ByType[name]++
		if c.o.Provenance && out.ID != "" && out.UpstreamID != "" {
			prov, err := c.e.Provenance(out, opts, c.o.Profile)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrConvert, err)
			}
			if err := c.write("Provenance.ndjson", prov); err != nil {
				return err
			}
		}
	}
	return c.report(where, upstream, res.Issues, "")
}

// report writes the loss report of one input as an OperationOutcome line.
func (c *converter) report(where, upstream string, issues []Issue, diagnostics string) error {
	if len(issues) == 0 {
		return nil
	}
	c.st.Issues += len(issues)
	origin := where
	if upstream != "" {
		origin += " (" + upstream + ")"
	}
	var list []any
	for _, is := range issues {
		item := object{"severity": is.Severity, "code": is.Code, "details": object{"text": is.Message}, "diagnostics": origin}
		if diagnostics != "" {
			item["diagnostics"] = origin + ": " + diagnostics
		}
		if is.Path != "" {
			item["expression"] = []any{is.Path}
		}
		list = append(list, item)
	}
	b, err := encodeObject(object{"resourceType": "OperationOutcome", "issue": list})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConvert, err)
	}
	return c.write("OperationOutcome.ndjson", b)
}

func (c *converter) write(name string, line []byte) error {
	t, ok := c.outs[name]
	if !ok {
		f, err := os.CreateTemp(c.o.OutDir, "."+name+".*.partial")
		if err != nil {
			return fmt.Errorf("%w: %v", ErrConvert, err)
		}
		t = &tempOut{name: name, f: f, w: bufio.NewWriterSize(f, 1<<16)}
		c.outs[name] = t
	}
	if _, err := t.w.Write(line); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrConvert, name, err)
	}
	if err := t.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrConvert, name, err)
	}
	return nil
}

// commit flushes, syncs and renames every temporary file into place.
func (c *converter) commit() error {
	names := make([]string, 0, len(c.outs))
	for n := range c.outs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := c.outs[n]
		if err := t.w.Flush(); err != nil {
			return fmt.Errorf("%w: write %s: %v", ErrConvert, n, err)
		}
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("%w: sync %s: %v", ErrConvert, n, err)
		}
	}
	for _, n := range names {
		t := c.outs[n]
		if err := t.f.Close(); err != nil {
			return fmt.Errorf("%w: close %s: %v", ErrConvert, n, err)
		}
		if err := os.Rename(t.f.Name(), filepath.Join(c.o.OutDir, n)); err != nil {
			return fmt.Errorf("%w: rename %s: %v", ErrConvert, n, err)
		}
		delete(c.outs, n)
		c.st.Outputs = append(c.st.Outputs, n)
	}
	return nil
}

// abort removes every temporary file.
func (c *converter) abort() {
	for _, t := range c.outs {
		_ = t.f.Close()
		_ = os.Remove(t.f.Name())
	}
	c.outs = map[string]*tempOut{}
}
