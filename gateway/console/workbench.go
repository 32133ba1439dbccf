package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	udiff "github.com/aymanbagabas/go-udiff"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
)

// A draft is the legal team's copy of the policies, held by the console:
// edits change the draft only, never the running policy. Publishing turns
// it into a change for review (a patch, a signed bundle).
type draft struct {
	mu        sync.Mutex
	ID        string
	Author    string
	Created   time.Time
	base      fstest.MapFS // the policies the draft started from
	files     fstest.MapFS // the draft
	Tests     *authz.TestReport
	Check     *authz.Report
	Impact    *Impact
	Approved  []string // subjects who approved it
	Published []string // files written
}

type drafts struct {
	mu   sync.Mutex
	byID map[string]*draft
	seq  int
}

func (ds *drafts) get(id string) (*draft, bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d, ok := ds.byID[id]
	return d, ok
}

// copyFS copies a policy file system into memory.
func copyFS(src fs.FS) (fstest.MapFS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	return out, err
}

func cloneFS(m fstest.MapFS) fstest.MapFS {
	out := make(fstest.MapFS, len(m))
	for k, v := range m {
		out[k] = &fstest.MapFile{Data: bytes.Clone(v.Data), Mode: v.Mode}
	}
	return out
}

// editable are the files a draft may change: Rego and data files.
func editable(p string) bool {
	return fs.ValidPath(p) && !strings.HasPrefix(p, "schema/") && (strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, ".json") || p == ".manifest")
}

// workbench authorizes a workbench action (no patient data: not audited
// unless it changes something).
func (c *Console) workbench(w http.ResponseWriter, r *http.Request, s *Session) (auth.Requester, bool) {
	_, req, ok := c.authorize(w, r, s, actWorkbench, false)
	return req, ok
}

type agreementsView struct {
	Revision   string
	Agreements []authz.Agreement
	Rules      []authz.RuleDoc
	Drafts     []*draft
	Error      string
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, s *Session) {
	if _, ok := c.workbench(w, r, s); !ok {
		return
	}
	v := agreementsView{Revision: c.opts.Policy.Revision()}
	if b, err := fs.ReadFile(c.opts.PolicyFiles, authz.AgreementsPath); err == nil {
		v.Agreements, err = authz.ParseAgreementsFile(b)
		if err != nil {
			v.Error = err.Error()
		}
	}
	docs, err := authz.RuleDocs(c.opts.PolicyFiles)
	if err != nil {
		v.Error = err.Error()
	}
	v.Rules = docs
	c.drafts.mu.Lock()
	for _, d := range c.drafts.byID {
		v.Drafts = append(v.Drafts, d)
	}
	c.drafts.mu.Unlock()
	slices.SortFunc(v.Drafts, func(a, b *draft) int { return strings.Compare(a.ID, b.ID) })
	c.render(w, r, s, http.StatusOK, "policy", "Agreements and rules", v)
}

func (c *Console) newDraft(w http.ResponseWriter, r *http.Request, s *Session) {
	if _, ok := c.workbench(w, r, s); !ok {
		return
	}
	base, err := copyFS(c.opts.PolicyFiles)
	if err != nil {
		c.errorPage(w, r, s, http.StatusInternalServerError, "The policies could not be read: "+err.Error())
		return
	}
	c.drafts.mu.Lock()
	c.drafts.seq++
	d := &draft{ID: strconv.Itoa(c.drafts.seq), Author: s.Subject, Created: c.opts.Now(), base: base, files: cloneFS(base)}
	c.drafts.byID[d.ID] = d
	c.drafts.mu.Unlock()
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID, http.StatusSeeOther)
}

// draftFor authorizes and finds the draft of the request.
func (c *Console) draftFor(w http.ResponseWriter, r *http.Request, s *Session) (*draft, auth.Requester, bool) {
	req, ok := c.workbench(w, r, s)
	if !ok {
		return nil, req, false
	}
	d, found := c.drafts.get(r.PathValue("id"))
	if !found {
		c.errorPage(w, r, s, http.StatusNotFound, "No such draft.")
		return nil, req, false
	}
	return d, req, true
}

// fileLine is one line of a file with the problems found on it.
type fileLine struct {
	N        int
	Text     string
	Problems []string
}

type draftView struct {
	D          *draft
	Files      []string
	Changed    []string
	Agreements []authz.Agreement
	Problems   []authz.Problem
	// Failures are the failing tests, by file and line.
	Failures  []authz.TestResult
	Patch     string
	Approvals int
	Message   string
}

func (c *Console) draftView(d *draft) draftView {
	v := draftView{D: d, Approvals: max(c.opts.Approvals, 1)}
	for p := range d.files {
		if editable(p) {
			v.Files = append(v.Files, p)
		}
	}
	slices.Sort(v.Files)
	v.Changed = changedFiles(d)
	if b, ok := d.files[authz.AgreementsPath]; ok {
		v.Agreements, _ = authz.ParseAgreementsFile(b.Data)
	}
	if d.Check != nil {
		v.Problems = d.Check.Problems
	}
	if d.Tests != nil {
		for _, t := range d.Tests.Tests {
			if t.Outcome == "FAIL" || t.Outcome == "ERROR" {
				v.Failures = append(v.Failures, t)
			}
		}
	}
	v.Patch = patchOf(d)
	return v
}

func (c *Console) draftPage(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	d.mu.Lock()
	v := c.draftView(d)
	v.Message = r.URL.Query().Get("done")
	d.mu.Unlock()
	c.render(w, r, s, http.StatusOK, "draft", "Draft "+d.ID, v)
}

func changedFiles(d *draft) []string {
	var out []string
	for p, f := range d.files {
		if b, ok := d.base[p]; !ok || !bytes.Equal(b.Data, f.Data) {
			out = append(out, p)
		}
	}
	for p := range d.base {
		if _, ok := d.files[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// patchOf renders the draft's changes as a unified diff against the
// policies it started from, paths as in the repository (policies/...).
func patchOf(d *draft) string {
	var b strings.Builder
	for _, p := range changedFiles(d) {
		var old, cur string
		if f, ok := d.base[p]; ok {
			old = string(f.Data)
		}
		if f, ok := d.files[p]; ok {
			cur = string(f.Data)
		}
		b.WriteString(udiff.Unified("a/policies/"+p, "b/policies/"+p, old, cur))
	}
	return b.String()
}

type agreementForm struct {
	D        *draft
	A        authz.Agreement
	Index    int
	Error    string
	Purposes []string
	Classes  []string
}

var formPurposes = []string{"TREAT", "ETREAT", "COC", "PATRQT", "PUBHLTH", "HRESCH", "POPHLTH"}
var formClasses = []string{"C", "S", "aggregate", "audit"}

func (c *Console) agreementForm(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	d.mu.Lock()
	list, _ := authz.ParseAgreementsFile(d.files[authz.AgreementsPath].Data)
	d.mu.Unlock()
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	f := agreementForm{D: d, Index: -1, Purposes: formPurposes, Classes: formClasses}
	if err == nil && i >= 0 && i < len(list) {
		f.A, f.Index = list[i], i
	}
	c.render(w, r, s, http.StatusOK, "agreement", "Agreement", f)
}

func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (c *Console) saveAgreement(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	list, err := authz.ParseAgreementsFile(d.files[authz.AgreementsPath].Data)
	if err != nil {
		c.errorPage(w, r, s, http.StatusConflict, "The draft's agreements file does not load; fix it as JSON first: "+err.Error())
		return
	}
	a := authz.Agreement{
		ID: strings.TrimSpace(r.PostFormValue("id")), Title: strings.TrimSpace(r.PostFormValue("title")),
		Kind: r.PostFormValue("kind"), Parties: fields(strings.ToUpper(r.PostFormValue("parties"))),
		Purposes: r.PostForm["purposes"], DataClasses: r.PostForm["data_classes"],
		ResourceTypes: fields(r.PostFormValue("resource_types")), ValidFrom: r.PostFormValue("valid_from"),
		ValidUntil: r.PostFormValue("valid_until"), ExplicitConsentRequired: r.PostFormValue("explicit_consent_required") == "on",
		BreakGlass: r.PostFormValue("break_glass") == "on", LegalBasis: strings.TrimSpace(r.PostFormValue("legal_basis")),
	}
	i, err := strconv.Atoi(r.PostFormValue("index"))
	if err == nil && i >= 0 && i < len(list) {
		a.Obligations = list[i].Obligations
		list[i] = a
	} else {
		i = len(list)
		list = append(list, a)
	}
	b, err := authz.FormatAgreementsFile(list)
	if err == nil {
		_, err = authz.ParseAgreementsFile(b)
	}
	if err != nil {
		f := agreementForm{D: d, A: a, Index: i, Error: err.Error(), Purposes: formPurposes, Classes: formClasses}
		c.render(w, r, s, http.StatusUnprocessableEntity, "agreement", "Agreement", f)
		return
	}
	d.files[authz.AgreementsPath] = &fstest.MapFile{Data: b, Mode: 0o644}
	d.Tests, d.Check, d.Impact, d.Approved = nil, nil, nil, nil
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=saved", http.StatusSeeOther)
}

type fileView struct {
	D     *draft
	Path  string
	Text  string
	Lines []fileLine
	Error string
}

// annotate splits a file into lines with the problems found on each.
func annotate(text, p string, problems []authz.Problem, failures []authz.TestResult) []fileLine {
	lines := strings.Split(text, "\n")
	out := make([]fileLine, len(lines))
	for i, l := range lines {
		out[i] = fileLine{N: i + 1, Text: l}
	}
	for _, pr := range problems {
		if pr.File == p && pr.Line > 0 && pr.Line <= len(out) {
			out[pr.Line-1].Problems = append(out[pr.Line-1].Problems, pr.Kind+": "+pr.Message)
		}
	}
	for _, t := range failures {
		if t.File == p && t.Line > 0 && t.Line <= len(out) {
			msg := t.Outcome + ": " + t.Name
			if t.Error != "" {
				msg += ": " + t.Error
			}
			out[t.Line-1].Problems = append(out[t.Line-1].Problems, msg)
		}
	}
	return out
}

func (c *Console) fileEditor(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	p := r.URL.Query().Get("path")
	d.mu.Lock()
	defer d.mu.Unlock()
	f, found := d.files[p]
	if !found || !editable(p) {
		c.errorPage(w, r, s, http.StatusNotFound, "The draft has no such file.")
		return
	}
	v := c.draftView(d)
	c.render(w, r, s, http.StatusOK, "file", p, fileView{D: d, Path: p, Text: string(f.Data), Lines: annotate(string(f.Data), p, v.Problems, v.Failures)})
}

func (c *Console) saveFile(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	p := r.PostFormValue("path")
	if !editable(p) {
		c.errorPage(w, r, s, http.StatusBadRequest, "Only Rego and JSON files of the policies can be edited here.")
		return
	}
	text := strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n")
	d.mu.Lock()
	defer d.mu.Unlock()
	if p == authz.AgreementsPath {
		if _, err := authz.ParseAgreementsFile([]byte(text)); err != nil {
			c.render(w, r, s, http.StatusUnprocessableEntity, "file", p, fileView{D: d, Path: p, Text: text, Lines: annotate(text, p, nil, nil), Error: err.Error()})
			return
		}
	}
	d.files[p] = &fstest.MapFile{Data: []byte(text), Mode: 0o644}
	d.Tests, d.Check, d.Impact, d.Approved = nil, nil, nil, nil
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=saved", http.StatusSeeOther)
}

// testDraft runs the draft's Rego tests with per-rule coverage and the
// full check (format, input schema, protected attributes: the
// non-discrimination check).
func (c *Console) testDraft(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	d.mu.Lock()
	fsys := cloneFS(d.files)
	d.mu.Unlock()
	rep, terr := authz.TestFS(r.Context(), fsys, authz.TestOptions{})
	chk, _ := authz.CheckFS(r.Context(), fsys, "draft "+d.ID)
	d.mu.Lock()
	if terr == nil {
		d.Tests = &rep
	} else {
		d.Tests = nil
	}
	d.Check = &chk
	d.mu.Unlock()
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=tested#results", http.StatusSeeOther)
}

func (c *Console) impactPage(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	if c.opts.Decisions == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "No decision log is configured (policy.decision_log): there is nothing to replay.")
		return
	}
	days, err := strconv.Atoi(r.PostFormValue("days"))
	if err != nil || days < 1 || days > 366 {
		days = 7
	}
	d.mu.Lock()
	fsys := cloneFS(d.files)
	d.mu.Unlock()
	p, err := authz.Prepare(r.Context(), fsys)
	if err != nil {
		c.errorPage(w, r, s, http.StatusUnprocessableEntity, "The draft does not compile, so it cannot be replayed: "+err.Error())
		return
	}
	to := c.opts.Now()
	im, err := Replay(r.Context(), c.opts.Decisions, p, to.AddDate(0, 0, -days), to)
	if err != nil {
		c.errorPage(w, r, s, http.StatusInternalServerError, "The decision log could not be replayed: "+err.Error())
		return
	}
	d.mu.Lock()
	d.Impact = &im
	d.mu.Unlock()
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=replayed#impact", http.StatusSeeOther)
}

type explainView struct {
	ID        string
	Entry     *authz.LogEntry
	Input     string
	Active    *authz.Explanation
	Draft     *authz.Explanation
	DraftID   string
	Error     string
	Workbench bool
}

// explain looks a decision up and explains it under the active revision
// and, when draftID names one, under that draft, both as at the time the
// decision was taken.
func (c *Console) explain(ctx context.Context, id, draftID string) explainView {
	v := explainView{ID: id, DraftID: draftID}
	if id == "" {
		return v
	}
	if c.opts.Decisions == nil {
		v.Error = "No decision log is configured (policy.decision_log)."
		return v
	}
	e, err := c.opts.Decisions.Find(ctx, id)
	if err != nil {
		if errors.Is(err, authz.ErrDecisionNotFound) {
			v.Error = "No decision with this id is in the decision log."
		} else {
			v.Error = "The decision log could not be read."
			c.log.ErrorContext(ctx, "console: decision log", "error", err)
		}
		return v
	}
	v.Entry = &e
	v.Input = indentJSON(e.Input)
	if ex, err := c.opts.Policy.ExplainAt(ctx, e.Input, e.Timestamp); err == nil {
		v.Active = &ex
	}
	if d, ok := c.drafts.get(draftID); ok {
		d.mu.Lock()
		fsys := cloneFS(d.files)
		d.mu.Unlock()
		if p, err := authz.Prepare(ctx, fsys); err == nil {
			if ex, err := p.Explain(ctx, e.Input, e.Timestamp); err == nil {
				v.Draft = &ex
			}
		} else {
			v.Error = "The draft does not compile: " + err.Error()
		}
	}
	return v
}

func (c *Console) explainPage(w http.ResponseWriter, r *http.Request, s *Session) {
	if _, ok := c.workbench(w, r, s); !ok {
		return
	}
	v := c.explain(r.Context(), strings.TrimSpace(r.URL.Query().Get("id")), r.URL.Query().Get("draft"))
	v.Workbench = true
	status := http.StatusOK
	if v.ID != "" && v.Entry == nil {
		status = http.StatusNotFound
	}
	c.render(w, r, s, status, "explain", "Explain a decision", v)
}

// publishDraft turns the draft into a change for review: a patch against
// policies/ and, with a signing key, a signed OPA bundle for the bundle
// server. The running policy is not touched. With Approvals 2, a second
// legal user must approve first. Publishing is audited.
func (c *Console) publishDraft(w http.ResponseWriter, r *http.Request, s *Session) {
	d, _, ok := c.draftFor(w, r, s)
	if !ok {
		return
	}
	dec, req, ok := c.authorize(w, r, s, actPublish, true)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(changedFiles(d)) == 0 {
		c.errorPage(w, r, s, http.StatusConflict, "The draft changes nothing.")
		return
	}
	if d.Tests == nil || !d.Tests.OK(false) || d.Check == nil || !d.Check.OK() {
		c.errorPage(w, r, s, http.StatusConflict, "Run the tests and checks first: a draft is published only when every test passes, every rule is tested and the check finds nothing.")
		return
	}
	if !slices.Contains(d.Approved, s.Subject) {
		d.Approved = append(d.Approved, s.Subject)
	}
	if len(d.Approved) < max(c.opts.Approvals, 1) {
		_, _ = c.record(r.Context(), req, actPublish, dec, http.StatusAccepted, nil)
		http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=approved", http.StatusSeeOther)
		return
	}
	written, err := c.publish(d)
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: publish", "error", err)
		c.errorPage(w, r, s, http.StatusInternalServerError, "The change could not be written: "+err.Error())
		return
	}
	if _, err := c.record(r.Context(), req, actPublish, dec, http.StatusOK, nil); err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; the change was written but its publication is not recorded.")
		return
	}
	d.Published = written
	http.Redirect(w, r, Prefix+"/policy/drafts/"+d.ID+"?done=published", http.StatusSeeOther)
}

// publish writes the patch and, with a signing key, the signed bundle.
func (c *Console) publish(d *draft) ([]string, error) {
	if err := os.MkdirAll(c.opts.PublishDir, 0o750); err != nil {
		return nil, err
	}
	stamp := c.opts.Now().UTC().Format("20060102T150405Z")
	name := filepath.Join(c.opts.PublishDir, "draft-"+d.ID+"-"+stamp)
	var written []string
	if err := os.WriteFile(name+".patch", []byte(patchOf(d)), 0o640); err != nil {
		return nil, err
	}
	written = append(written, name+".patch")
	if len(c.opts.SigningKey) == 0 {
		return written, nil
	}
	b, err := authz.Bundle(cloneFS(d.files), "draft-"+d.ID+"-"+stamp)
	if err != nil {
		return written, err
	}
	alg := c.opts.SigningAlg
	if alg == "" {
		alg = "RS256"
	}
	if err := b.GenerateSignature(bundle.NewSigningConfig(string(c.opts.SigningKey), alg, ""), "mhg-console", false); err != nil {
		return written, fmt.Errorf("sign bundle: %w", err)
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		return written, fmt.Errorf("write bundle: %w", err)
	}
	if err := os.WriteFile(name+".tar.gz", buf.Bytes(), 0o640); err != nil {
		return written, err
	}
	return append(written, name+".tar.gz"), nil
}

func indentJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}
