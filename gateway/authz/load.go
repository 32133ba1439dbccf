package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/migrant-health/mhg/policies"
)

// DecisionQuery is the query every decision evaluates.
const DecisionQuery = "data.mhg.authz.decision"

// decisionPath is DecisionQuery as OPA decision logs name it.
const decisionPath = "mhg/authz/decision"

// Errors callers branch on.
var (
	// ErrNoPolicy: no policy revision is loaded; every decision denies.
	ErrNoPolicy = errors.New("no policy loaded")
	// ErrStalePolicy: a policy is loaded, but the last reload failed and the
	// engine keeps serving the last good revision.
	ErrStalePolicy = errors.New("serving the last good policy revision; the last reload failed")
	// ErrPolicyLoad wraps every reason a policy revision could not be
	// loaded: unreadable files, Rego that does not compile, invalid
	// agreements, failing Rego tests.
	ErrPolicyLoad = errors.New("policy load failed")
	// ErrPolicyTests: the revision's Rego tests fail (wrapped with
	// ErrPolicyLoad).
	ErrPolicyTests = errors.New("policy tests fail")
	// ErrEvaluation: the decision could not be evaluated; it denies.
	ErrEvaluation = errors.New("policy evaluation failed")
)

// Load stages, for errors and the reload failure metric.
const (
	stageRead    = "read"
	stageData    = "data"
	stageCompile = "compile"
	stageTest    = "test"
	stagePrepare = "prepare"
)

// loadError is a failed load, with the stage that failed.
type loadError struct {
	stage string
	err   error
}

func (e *loadError) Error() string { return fmt.Sprintf("%s: %v", e.stage, e.err) }
func (e *loadError) Unwrap() []error {
	return []error{ErrPolicyLoad, e.err}
}

func failed(stage string, err error) error { return &loadError{stage: stage, err: err} }

// failedStage returns the stage of a load error, "" for other errors.
func failedStage(err error) string {
	var le *loadError
	if errors.As(err, &le) {
		return le.stage
	}
	return ""
}

// policySet is one revision of the policies as read, before compiling.
type policySet struct {
	// revision is the .manifest revision, or "sha256:<hex>" of the content.
	revision string
	// hash is the content hash, whatever the manifest says.
	hash string
	// modules are all Rego modules by file path, tests included.
	modules map[string]*ast.Module
	// raw holds each module's source, for formatting checks.
	raw map[string][]byte
	// data is the data document (data.json and *.json files), plus the
	// agreement index under mhg.index.
	data map[string]any
	// agreements are the validated agreements.
	agreements []Agreement
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// serving returns the modules without the tests.
func (p *policySet) serving() map[string]*ast.Module {
	out := make(map[string]*ast.Module, len(p.modules))
	for name, m := range p.modules {
		if !isTestFile(name) {
			out[name] = m
		}
	}
	return out
}

// skipDirs are folders of a policy directory that hold no policy: the
// input schema is checked against, not loaded as data; testdata holds
// fixtures for Go tests.
var skipDirs = map[string]bool{"schema": true, "testdata": true}

// policyFS returns the file system of a policy directory; "" is the
// policies built into the binary.
func policyFS(dir string) (fs.FS, string, error) {
	if dir == "" {
		return policies.FS, "built-in policies", nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, dir, failed(stageRead, err)
	}
	if !info.IsDir() {
		return nil, dir, failed(stageRead, fmt.Errorf("%s is not a directory", dir))
	}
	return os.DirFS(dir), dir, nil
}

// loadFS reads a policy directory in OPA bundle layout: Rego modules,
// JSON or YAML data files (placed under data by their folder, as `opa run`
// and `opa build` place them), and an optional .manifest.
func loadFS(fsys fs.FS) (*policySet, error) {
	res, err := readFS(fsys)
	if err != nil {
		return nil, failed(stageRead, err)
	}
	set := &policySet{
		modules: map[string]*ast.Module{},
		raw:     map[string][]byte{},
		data:    res.Documents,
	}
	for name, f := range res.Modules {
		set.modules[name] = f.Parsed
		set.raw[name] = f.Raw
	}
	var manifest bundle.Manifest
	if b, err := fs.ReadFile(fsys, ".manifest"); err == nil {
		if err := json.Unmarshal(b, &manifest); err != nil {
			return nil, failed(stageRead, fmt.Errorf(".manifest: %w", err))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, failed(stageRead, err)
	}
	set.hash = contentHash(set.raw, set.data)
	set.revision = revisionOf(manifest.Revision, set.hash)
	if err := set.index(); err != nil {
		return nil, err
	}
	return set, nil
}

// readFS loads the modules and data documents of a policy directory.
func readFS(fsys fs.FS) (*loader.Result, error) {
	return loader.NewFileLoader().
		WithFS(fsys).
		WithProcessAnnotation(true).
		WithRegoVersion(ast.RegoV1).
		Filtered([]string{"."}, func(abspath string, info fs.FileInfo, depth int) bool {
			// Hidden files and folders are editor swap files, temporary
			// files of atomic writes, or ConfigMap internals.
			if depth > 0 && strings.HasPrefix(info.Name(), ".") {
				return true
			}
			return info.IsDir() && skipDirs[info.Name()]
		})
}

// fromBundle takes a bundle as OPA's bundle reader produced it (from a
// bundle server).
func fromBundle(b *bundle.Bundle) (*policySet, error) {
	set := &policySet{
		modules: map[string]*ast.Module{},
		raw:     map[string][]byte{},
		data:    b.Data,
	}
	if set.data == nil {
		set.data = map[string]any{}
	}
	for _, m := range b.Modules {
		name := strings.TrimPrefix(m.Path, "/")
		set.modules[name] = m.Parsed
		set.raw[name] = m.Raw
	}
	set.hash = contentHash(set.raw, set.data)
	set.revision = revisionOf(b.Manifest.Revision, set.hash)
	if err := set.index(); err != nil {
		return nil, err
	}
	return set, nil
}

func revisionOf(manifest, hash string) string {
	if manifest != "" {
		return manifest
	}
	return hash
}

// contentHash hashes the modules and the data, in a stable order.
func contentHash(raw map[string][]byte, data map[string]any) string {
	h := sha256.New()
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(raw[name]))
		h.Write(raw[name])
	}
	// encoding/json sorts map keys, so this is stable.
	b, _ := json.Marshal(data)
	h.Write(b)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// index validates the agreements and adds their index at data.mhg.index.
func (p *policySet) index() error {
	var doc any = []any{}
	if d, ok := p.data["data"].(map[string]any); ok {
		if a, ok := d["agreements"]; ok {
			doc = a
		}
	}
	list, err := parseAgreements(doc)
	if err != nil {
		return failed(stageData, err)
	}
	var stats any
	if d, ok := p.data["data"].(map[string]any); ok {
		stats = d["statistics"]
	}
	domestic, err := parseDomesticStatistics(stats)
	if err != nil {
		return failed(stageData, err)
	}
	p.agreements = list
	mhg, _ := p.data["mhg"].(map[string]any)
	if mhg == nil {
		mhg = map[string]any{}
	}
	if _, taken := mhg["index"]; taken {
		return failed(stageData, errors.New("data.mhg.index is computed from the agreements; no data file may set it"))
	}
	// Copy rather than mutate: the loaded document may be shared.
	data := make(map[string]any, len(p.data)+1)
	for k, v := range p.data {
		data[k] = v
	}
	mhgCopy := make(map[string]any, len(mhg)+1)
	for k, v := range mhg {
		mhgCopy[k] = v
	}
	index := indexAgreements(list)
	if domestic != nil {
		index["statistics_domestic"] = domestic.statisticsDoc()
	}
	mhgCopy["index"] = index
	data["mhg"] = mhgCopy
	p.data = data
	return nil
}

var (
	schemaOnce sync.Once
	schemaSet  *ast.SchemaSet
	schemaDoc  any
	schemaErr  error
)

// inputSchema is the policy input schema built into the binary. It is
// deliberately not read from the policy directory: the schema describes
// what the Go code supplies, so a policy edit cannot widen it.
func inputSchema() (*ast.SchemaSet, any, error) {
	schemaOnce.Do(func() {
		if err := json.Unmarshal(policies.InputSchema(), &schemaDoc); err != nil {
			schemaErr = fmt.Errorf("input schema: %w", err)
			return
		}
		schemaSet = ast.NewSchemaSet()
		schemaSet.Put(ast.SchemaRootRef, schemaDoc)
	})
	return schemaSet, schemaDoc, schemaErr
}

// newCompiler returns a compiler that type-checks every reference to input
// against the input schema: a rule reading a path the schema does not
// have (input.patient.gender, or r.nationality with r := input.requester)
// does not compile.
func newCompiler() (*ast.Compiler, error) {
	ss, _, err := inputSchema()
	if err != nil {
		return nil, err
	}
	return ast.NewCompiler().
		WithSchemas(ss).
		WithUseTypeCheckAnnotations(true).
		WithDefaultRegoVersion(ast.RegoV1), nil
}

// compiled is a revision ready to decide.
type compiled struct {
	revision string
	hash     string
	query    rego.PreparedEvalQuery
	compiler *ast.Compiler
	store    storage.Store
	set      *policySet
	memo     *memo // nil: every decision evaluates the policy
}

// compile compiles the serving modules, runs the revision's Rego tests and
// prepares the decision query. Any failure rejects the revision.
func compile(ctx context.Context, set *policySet) (*compiled, error) {
	c, err := compileServing(ctx, set)
	if err != nil {
		return nil, err
	}
	if err := runTestsQuietly(ctx, set); err != nil {
		return nil, err
	}
	return c, nil
}

// compileServing compiles the serving modules and prepares the decision
// query, without running the tests.
func compileServing(ctx context.Context, set *policySet) (*compiled, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, failed(stageCompile, err)
	}
	if c.Compile(set.serving()); c.Failed() {
		return nil, failed(stageCompile, c.Errors)
	}
	store := inmem.NewFromObjectWithOpts(set.data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query(DecisionQuery),
		rego.Compiler(c),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, failed(stagePrepare, err)
	}
	return &compiled{revision: set.revision, hash: set.hash, query: pq, compiler: c, store: store, set: set}, nil
}

// runTestsQuietly runs the revision's Rego tests and fails when any test
// fails or errors.
func runTestsQuietly(ctx context.Context, set *policySet) error {
	results, err := runRegoTests(ctx, set, nil, "")
	if err != nil {
		return failed(stageTest, err)
	}
	var bad []string
	for _, r := range results {
		if !r.Pass() && !r.Skip {
			bad = append(bad, fmt.Sprintf("%s.%s", r.Package, r.Name))
		}
	}
	if len(bad) > 0 {
		return failed(stageTest, fmt.Errorf("%w: %s", ErrPolicyTests, strings.Join(bad, ", ")))
	}
	return nil
}

// runRegoTests runs the tests of a set with OPA's tester; cov, when not
// nil, collects coverage.
func runRegoTests(ctx context.Context, set *policySet, cov *cover.Cover, filter string) ([]*tester.Result, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	store := inmem.NewFromObjectWithOpts(set.data, inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	runner := tester.NewRunner().
		SetCompiler(c).
		SetStore(store).
		SetModules(set.modules).
		SetDefaultRegoVersion(ast.RegoV1).
		Filter(filter)
	if cov != nil {
		runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return nil, err
	}
	var out []*tester.Result
	for r := range ch {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *tester.Result) int {
		return strings.Compare(path.Join(a.Package, a.Name), path.Join(b.Package, b.Name))
	})
	return out, nil
}
