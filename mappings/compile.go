package mappings

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance"
)

// Layout of a spec tree (the mappings/ folder, or a test's testdata copy).
const (
	commonDir    = "common"
	specFileName = "mapping.yaml"
	registryName = "naming-systems.yaml"
	cmDirName    = "conceptmaps"
)

// Extension actions a spec may name. README.md explains each.
const (
	actKeep       = "keep"
	actDrop       = "drop"
	actReligion   = "religion"
	actOriginOnly = "origin-only"
	actFirewall   = "firewall"
	actCopy       = "copy"
	actRename     = "rename"
	actTransform  = "transform"
)

var extActions = map[string]bool{
	actKeep: true, actDrop: true, actReligion: true, actOriginOnly: true,
	actFirewall: true, actCopy: true, actRename: true, actTransform: true,
}

// mhpProfiles are the profile names a resource rule may claim.
var mhpProfiles = map[string]string{
	"mhp-patient":             conformance.ProfilePatient,
	"mhp-condition":           conformance.ProfileCondition,
	"mhp-allergyintolerance":  conformance.ProfileAllergy,
	"mhp-medicationstatement": conformance.ProfileMedStatement,
	"mhp-medicationrequest":   conformance.ProfileMedRequest,
	"mhp-immunization":        conformance.ProfileImmunization,
	"mhp-observation-lab":     conformance.ProfileObservationLab,
	"mhp-procedure":           conformance.ProfileProcedure,
	"none":                    "",
}

// plan is one national profile's compiled mapping: the shared rules of
// common/ merged with the profile's own.
type plan struct {
	profile, title, country, version string
	national                         []string
	resources                        map[string]*resourcePlan
	ext                              map[string]*extRule
	reg                              *registry
	translate                        map[string][]*translateRule
	countryMaps                      []*conceptMap
	addresses, concepts              map[string][]fhirPath
	firewall                         []*firewallRule
	labels                           []*labelSpec
	replace                          map[codingKey]*replaceSpec
}

type resourcePlan struct {
	profile    string
	byCategory map[string]string
	required   []requiredRule
	drop       []string
	transforms []*resourceTransform
}

type requiredRule struct {
	// name is the element ("code") or the choice stem ("effective").
	name   string
	choice bool
	typ    string
}

type extRule struct {
	*extensionSpec
	file      string
	statusMap *conceptMap
	transform *extensionTransform
}

type translateRule struct {
	path fhirPath
	maps []*conceptMap
}

// Firewall-code actions.
const (
	fwContext = "migration-context"
	fwLabel   = "label"
)

type firewallRule struct {
	*firewallCodeSpec
	statusMap *conceptMap
}

// specTree is what LoadFS reads before compiling: every file, parsed.
type specTree struct {
	fsys     fs.FS
	maps     map[string]*conceptMap // by id
	lists    map[string]*codeList   // common/codelists, by id
	mapDir   map[string]string      // id -> folder
	reg      *registry
	common   *mappingSpec
	profiles map[string]*mappingSpec
	digest   map[string]string // folder -> sha256 of its files
	status   map[string]bool
	errs     []error
}

func (t *specTree) fail(err error) { t.errs = append(t.errs, err) }

// compileTree reads and compiles a whole spec tree. Every problem found is
// returned (joined), each a *SpecError with file and line.
func compileTree(fsys fs.FS) (map[string]*plan, error) {
	t := &specTree{fsys: fsys, maps: map[string]*conceptMap{}, mapDir: map[string]string{}, lists: map[string]*codeList{},
		profiles: map[string]*mappingSpec{}, digest: map[string]string{}, status: migrationStatusCodes()}
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("%w: read spec tree: %v", ErrInvalidSpec, err)
	}
	var profileDirs []string
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == commonDir || d.Name() == "testdata" {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(d.Name(), specFileName)); err == nil {
			profileDirs = append(profileDirs, d.Name())
		}
	}
	sort.Strings(profileDirs)
	for _, dir := range append([]string{commonDir}, profileDirs...) {
		t.readDir(dir)
	}
	if t.common == nil && len(t.errs) == 0 {
		t.fail(&SpecError{File: path.Join(commonDir, specFileName), Msg: "missing: the shared rules are required"})
	}
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	t.compileCodeRules(commonDir, path.Join(commonDir, specFileName), t.common)
	for _, dir := range profileDirs {
		if s := t.profiles[dir]; s != nil {
			t.compileCodeRules(dir, path.Join(dir, specFileName), s)
		}
	}
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	plans := map[string]*plan{}
	for _, dir := range profileDirs {
		if p := t.compileProfile(dir, t.profiles[dir]); p != nil {
			plans[p.profile] = p
		}
	}
	if len(t.errs) > 0 {
		return nil, errors.Join(dedupe(t.errs)...)
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%w: no national profile folders", ErrInvalidSpec)
	}
	return plans, nil
}

// readDir parses one folder: its mapping.yaml, its ConceptMaps and (in
// common/) the identifier registry.
func (t *specTree) readDir(dir string) {
	h := sha256.New()
	var files []string
	_ = fs.WalkDir(t.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		b, err := fs.ReadFile(t.fsys, f)
		if err != nil {
			t.fail(&SpecError{File: f, Msg: err.Error()})
			continue
		}
		h.Write([]byte(f))
		h.Write(b)
		switch {
		case path.Dir(f) == path.Join(dir, cmDirName) && path.Ext(f) == ".json":
			cm, err := loadConceptMap(f, b)
			if err != nil {
				t.fail(err)
				continue
			}
			if prev, dup := t.maps[cm.id]; dup {
				t.fail(&SpecError{File: f, Msg: fmt.Sprintf("ConceptMap id %q is already used by %s", cm.id, prev.file)})
				continue
			}
			t.maps[cm.id] = cm
			t.mapDir[cm.id] = dir
		case f == path.Join(dir, specFileName):
			var s mappingSpec
			if err := decodeYAML(f, b, &s); err != nil {
				t.fail(err)
				continue
			}
			if dir == commonDir {
				t.common = &s
			} else {
				if s.Profile != dir {
					t.fail(s.at(f, "profile %q must equal the folder name %q", s.Profile, dir))
				}
				t.profiles[dir] = &s
			}
		case dir == commonDir && f == path.Join(dir, registryName):
			var r registryFile
			if err := decodeYAML(f, b, &r); err != nil {
				t.fail(err)
				continue
			}
			t.reg = newRegistry()
			for _, e := range r.Identifiers {
				if err := t.reg.add(f, e, t.status); err != nil {
					t.fail(err)
				}
			}
		case dir == commonDir && path.Dir(f) == path.Join(dir, codeListDirName) && path.Ext(f) == ".txt":
			l, err := loadCodeList(f, b)
			if err != nil {
				t.fail(err)
				continue
			}
			t.lists[l.id] = l
		case path.Base(f) == "README.md":
		default:
			t.fail(&SpecError{File: f, Msg: "unexpected file: specs are mapping.yaml, " + registryName + " and codelists/*.txt (common) and conceptmaps/*.json"})
		}
	}
	t.digest[dir] = hex.EncodeToString(h.Sum(nil))
}

// compileProfile merges the shared rules with one profile's and compiles
// the result. A national rule replaces a shared rule for the same
// extension URL; two rules for one URL in the same file contradict.
func (t *specTree) compileProfile(dir string, s *mappingSpec) *plan {
	file := path.Join(dir, specFileName)
	commonFile := path.Join(commonDir, specFileName)
	if s.Version == "" {
		t.fail(s.at(file, "version is required: it is part of cache keys and Provenance"))
	}
	if s.Country != "" {
		if a2, ok := conformance.CountryAlpha2(s.Country); !ok || a2 != s.Country {
			t.fail(s.at(file, "country %q is not an ISO 3166-1 alpha-2 code", s.Country))
		}
	}
	sum := sha256.Sum256([]byte(t.digest[commonDir] + t.digest[dir]))
	p := &plan{
		profile: s.Profile, title: s.Title, country: s.Country,
		version:   s.Version + "+" + hex.EncodeToString(sum[:])[:8],
		national:  s.NationalProfiles,
		resources: map[string]*resourcePlan{}, ext: map[string]*extRule{},
		translate: map[string][]*translateRule{}, addresses: map[string][]fhirPath{},
		concepts: map[string][]fhirPath{}, replace: map[codingKey]*replaceSpec{},
	}
	if t.reg != nil {
		p.reg = t.reg.clone()
	} else {
		p.reg = newRegistry()
	}
	for _, e := range s.Identifiers {
		if err := p.reg.add(file, e, t.status); err != nil {
			t.fail(err)
		}
	}
	// The shared rules may only use shared ConceptMaps, a profile its own
	// and the shared ones.
	for _, src := range []struct {
		dir, file string
		spec      *mappingSpec
	}{{commonDir, commonFile, t.common}, {dir, file, s}} {
		t.compileResources(p, src.file, src.spec)
		t.compileExtensions(p, src.dir, src.file, src.spec)
		t.compileCodes(p, src.dir, src.file, src.spec)
	}
	if s.Countries != nil {
		t.fail(s.Countries.at(file, "countries belongs in common/mapping.yaml; a profile lists its country-maps"))
	}
	if c := t.common.Countries; c != nil {
		for _, a := range c.Addresses {
			if fp, ok := t.path(p, commonFile, c.pos, a); ok {
				p.addresses[fp.resource] = append(p.addresses[fp.resource], fp)
			}
		}
		for _, a := range c.Concepts {
			if fp, ok := t.path(p, commonFile, c.pos, a); ok {
				p.concepts[fp.resource] = append(p.concepts[fp.resource], fp)
			}
		}
	}
	for _, spec := range []*mappingSpec{t.common, s} {
		f, d := file, dir
		if spec == t.common {
			f, d = commonFile, commonDir
		}
		for _, id := range spec.CountryMaps {
			if cm := t.mapRef(d, f, spec.pos, id); cm != nil {
				p.countryMaps = append(p.countryMaps, cm)
			}
		}
	}
	return p
}

func (t *specTree) compileResources(p *plan, file string, s *mappingSpec) {
	names := make([]string, 0, len(s.Resources))
	for n := range s.Resources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, typ := range names {
		rs := s.Resources[typ]
		if rs == nil {
			continue
		}
		if !isResourceTypeName(typ) {
			t.fail(rs.at(file, "%q is not a resource type name", typ))
			continue
		}
		rp := p.resources[typ]
		if rp == nil {
			rp = &resourcePlan{byCategory: map[string]string{}}
			p.resources[typ] = rp
		}
		if rs.Profile != "" {
			url, ok := mhpProfiles[rs.Profile]
			if !ok {
				t.fail(rs.at(file, "%s: unknown MHP profile %q", typ, rs.Profile))
			}
			rp.profile = url
		}
		for cat, prof := range rs.ProfileByCategory {
			url, ok := mhpProfiles[prof]
			if !ok {
				t.fail(rs.at(file, "%s: unknown MHP profile %q for category %s", typ, prof, cat))
			}
			rp.byCategory[cat] = url
		}
		if len(rs.Required) > 0 {
			rp.required = nil
			keys := make([]string, 0, len(rs.Required))
			for k := range rs.Required {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				typName := rs.Required[k]
				if !absentTypes[typName] {
					t.fail(rs.at(file, "%s.%s: cannot fill type %q with data-absent-reason", typ, k, typName))
					continue
				}
				name, choice := strings.CutSuffix(k, "[x]")
				rp.required = append(rp.required, requiredRule{name: name, choice: choice, typ: typName})
			}
		}
		rp.drop = append(rp.drop, rs.Drop...)
		for _, name := range rs.Transforms {
			rt, ok := resourceTransforms[name]
			if !ok {
				t.fail(rs.at(file, "%s: unknown resource transform %q (see README.md for the list)", typ, name))
				continue
			}
			rp.transforms = append(rp.transforms, rt)
		}
	}
}

// absentTypes are the datatypes a required rule can fill with
// data-absent-reason.
var absentTypes = map[string]bool{
	"date": true, "dateTime": true, "CodeableConcept": true, "Reference": true, "string": true,
	"HumanName": true, "Period": true,
}

func (t *specTree) compileExtensions(p *plan, dir, file string, s *mappingSpec) {
	seen := map[string]*extensionSpec{}
	for _, e := range s.Extensions {
		if e.URL == "" || !strings.Contains(e.URL, ":") {
			t.fail(e.at(file, "extension rule needs an absolute url"))
			continue
		}
		if prev, dup := seen[e.URL]; dup {
			t.fail(e.at(file, "extension %s has two rules (first at line %d): contradictory", e.URL, prev.Line))
			continue
		}
		seen[e.URL] = e
		if !extActions[e.Action] {
			t.fail(e.at(file, "extension %s: unknown action %q", e.URL, e.Action))
			continue
		}
		r := &extRule{extensionSpec: e, file: file}
		switch e.Action {
		case actCopy, actRename:
			if e.To == "" || !strings.Contains(e.To, ":") {
				t.fail(e.at(file, "extension %s: %s needs an absolute url in to", e.URL, e.Action))
				continue
			}
		case actTransform:
			tr, ok := extensionTransforms[e.Transform]
			if !ok {
				t.fail(e.at(file, "extension %s: unknown transform %q (see README.md for the list)", e.URL, e.Transform))
				continue
			}
			if err := tr.check(e.With); err != nil {
				t.fail(e.at(file, "extension %s: transform %s: %v", e.URL, e.Transform, err))
				continue
			}
			r.transform = tr
		}
		if e.Action != actTransform && (e.Transform != "" || len(e.With) > 0) {
			t.fail(e.at(file, "extension %s: transform and with belong to action transform", e.URL))
			continue
		}
		if e.StatusMap != "" {
			if e.Action != actFirewall {
				t.fail(e.at(file, "extension %s: status-map belongs to action firewall", e.URL))
				continue
			}
			r.statusMap = t.mapRef(dir, file, e.pos, e.StatusMap)
			t.checkStatusMap(file, e.pos, r.statusMap)
		}
		p.ext[e.URL] = r
	}
}

func (t *specTree) compileCodes(p *plan, dir, file string, s *mappingSpec) {
	for _, tr := range s.Translate {
		fp, ok := t.path(p, file, tr.pos, tr.Path)
		if !ok {
			continue
		}
		if len(tr.Maps) == 0 {
			t.fail(tr.at(file, "translate %s: no maps", tr.Path))
			continue
		}
		rule := &translateRule{path: fp}
		for _, id := range tr.Maps {
			if cm := t.mapRef(dir, file, tr.pos, id); cm != nil {
				rule.maps = append(rule.maps, cm)
			}
		}
		p.translate[fp.resource] = append(p.translate[fp.resource], rule)
	}
	for _, fw := range s.Firewall {
		if fw.System == "" || fw.Code == "" {
			t.fail(fw.at(file, "firewall-codes entry needs system and code"))
			continue
		}
		switch fw.Action {
		case fwContext:
			if fw.Resource != "Observation" {
				t.fail(fw.at(file, "only an Observation can become a migration-context"))
				continue
			}
		case fwLabel:
		default:
			t.fail(fw.at(file, "firewall-codes action must be %s or %s", fwContext, fwLabel))
			continue
		}
		for _, prev := range p.firewall {
			if prev.System == fw.System && prev.Code == fw.Code && prev.Resource == fw.Resource {
				t.fail(fw.at(file, "firewall code %s#%s is listed twice (first at line %d): contradictory", fw.System, fw.Code, prev.Line))
			}
		}
		rule := &firewallRule{firewallCodeSpec: fw}
		if fw.StatusMap != "" {
			rule.statusMap = t.mapRef(dir, file, fw.pos, fw.StatusMap)
			t.checkStatusMap(file, fw.pos, rule.statusMap)
		}
		p.firewall = append(p.firewall, rule)
	}
	for _, l := range s.Labels {
		if l.System == "" || len(l.Prefixes) == 0 || l.Label.System == "" || l.Label.Code == "" {
			t.fail(l.at(file, "label rule needs system, code-prefixes and label system and code"))
			continue
		}
		p.labels = append(p.labels, l)
	}
	for _, r := range s.Replace {
		k := codingKey{r.From.System, r.From.Code}
		if r.From.System == "" || r.From.Code == "" || r.To.System == "" || r.To.Code == "" {
			t.fail(r.at(file, "replace-codes entry needs from and to, each with system and code"))
			continue
		}
		if prev, dup := p.replace[k]; dup {
			t.fail(r.at(file, "replace-codes: %s is replaced twice (first at line %d): contradictory", k, prev.Line))
			continue
		}
		if r.Class != "" && r.Class != ClassClinical && r.Class != ClassSensitive {
			t.fail(r.at(file, "replace-codes: class must be C or S"))
			continue
		}
		p.replace[k] = r
	}
}

// checkStatusMap makes sure a status map only produces mhp-migration-status
// codes that exist.
func (t *specTree) checkStatusMap(file string, at pos, cm *conceptMap) {
	if cm == nil {
		return
	}
	if cm.rule != nil {
		t.fail(at.at(file, "status map %s is a code rule, not a ConceptMap", cm.id))
		return
	}
	for _, groups := range cm.groups {
		for _, g := range groups {
			if g.target != conformance.CSMigrationStatus {
				t.fail(at.at(file, "status map %s must target %s", cm.id, conformance.CSMigrationStatus))
				return
			}
			for _, trs := range g.codes {
				for _, tr := range trs {
					if !tr.none() && !t.status[tr.code] {
						t.fail(at.at(file, "status map %s produces %q, not an mhp-migration-status code", cm.id, tr.code))
					}
				}
			}
		}
	}
}

func (t *specTree) path(p *plan, file string, at pos, s string) (fhirPath, bool) {
	fp, err := parsePath(s)
	if err != nil {
		t.fail(at.at(file, "%v", err))
		return fp, false
	}
	return fp, true
}

// mapRef resolves a ConceptMap id: a profile may use its own maps and the
// shared ones.
func (t *specTree) mapRef(dir, file string, at pos, id string) *conceptMap {
	cm, ok := t.maps[id]
	if !ok {
		t.fail(at.at(file, "unknown ConceptMap %q", id))
		return nil
	}
	if d := t.mapDir[id]; d != dir && d != commonDir {
		t.fail(at.at(file, "ConceptMap %q belongs to profile %s", id, d))
		return nil
	}
	return cm
}

// migrationStatusCodes are the codes of mhp-migration-status, read from the
// shipped CodeSystem so the two cannot drift apart.
func migrationStatusCodes() map[string]bool {
	out := map[string]bool{}
	for code := range migrationStatusDisplay() {
		out[code] = true
	}
	return out
}

// dedupe drops repeated errors: a broken shared rule is found once per
// profile that includes it.
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}
