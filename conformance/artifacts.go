package conformance

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed profiles/*.json profiles/iso3166-1.csv
var profileFS embed.FS

// ArtifactFile is one MHP conformance resource as shipped in
// conformance/profiles.
type ArtifactFile struct {
	// ResourceType is StructureDefinition, CodeSystem, ValueSet or
	// OperationDefinition.
	ResourceType string
	// ID is the logical id (the last segment of URL).
	ID string
	// URL is the canonical URL, under Canonical.
	URL string
	// Version is the business version of the artifact.
	Version string
	// File is the file name inside conformance/profiles.
	File string
	// JSON is the resource as FHIR R4 JSON. It is a copy: callers may keep
	// or change it.
	JSON []byte
}

type artifactIndex struct {
	all   []ArtifactFile
	byURL map[string]int
	err   error
}

var (
	artifactsOnce sync.Once
	artifacts     artifactIndex
)

func loadArtifacts() *artifactIndex {
	artifactsOnce.Do(func() {
		artifacts.byURL = map[string]int{}
		entries, err := fs.Glob(profileFS, "profiles/*.json")
		if err != nil {
			artifacts.err = err
			return
		}
		sort.Strings(entries)
		for _, name := range entries {
			b, err := profileFS.ReadFile(name)
			if err != nil {
				artifacts.err = fmt.Errorf("conformance: read %s: %w", name, err)
				return
			}
			var head struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				URL          string `json:"url"`
				Version      string `json:"version"`
			}
			if err := json.Unmarshal(b, &head); err != nil {
				artifacts.err = fmt.Errorf("conformance: %s: %w", name, err)
				return
			}
			if head.URL == "" || !strings.HasPrefix(head.URL, Canonical+"/") {
				artifacts.err = fmt.Errorf("conformance: %s: url %q is not under %s", name, head.URL, Canonical)
				return
			}
			if _, dup := artifacts.byURL[head.URL]; dup {
				artifacts.err = fmt.Errorf("conformance: %s: duplicate url %s", name, head.URL)
				return
			}
			artifacts.byURL[head.URL] = len(artifacts.all)
			artifacts.all = append(artifacts.all, ArtifactFile{
				ResourceType: head.ResourceType,
				ID:           head.ID,
				URL:          head.URL,
				Version:      head.Version,
				File:         path.Base(name),
				JSON:         b,
			})
		}
	})
	return &artifacts
}

func (a ArtifactFile) clone() ArtifactFile {
	a.JSON = bytes.Clone(a.JSON)
	return a
}

// Artifact returns the artifact with the given canonical URL. A version
// suffix ("url|0.1.0") must match the shipped version.
func Artifact(url string) (ArtifactFile, bool) {
	url, version, _ := strings.Cut(url, "|")
	idx := loadArtifacts()
	i, ok := idx.byURL[url]
	if !ok {
		return ArtifactFile{}, false
	}
	a := idx.all[i]
	if version != "" && version != a.Version {
		return ArtifactFile{}, false
	}
	return a.clone(), true
}

// Country is one ISO 3166-1 country.
type Country struct {
	Alpha2  string // two letters, the code MHP uses
	Alpha3  string // three letters, as sent by FR Core, DDCC and others
	Numeric string // three digits (also the UN M49 code of the country)
	Name    string // English short name
}

type countryIndex struct {
	list  []Country
	byKey map[string]int
	err   error
}

var (
	countriesOnce sync.Once
	countries     countryIndex
)

func loadCountries() *countryIndex {
	countriesOnce.Do(func() {
		b, err := profileFS.ReadFile("profiles/iso3166-1.csv")
		if err != nil {
			countries.err = err
			return
		}
		rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			countries.err = fmt.Errorf("conformance: iso3166-1.csv: %w", err)
			return
		}
		countries.byKey = map[string]int{}
		for i, r := range rows {
			if i == 0 {
				continue // header
			}
			if len(r) != 4 || len(r[0]) != 2 || len(r[1]) != 3 {
				countries.err = fmt.Errorf("conformance: iso3166-1.csv line %d: want alpha2,alpha3,numeric,name", i+1)
				return
			}
			countries.byKey[r[0]] = len(countries.list)
			countries.byKey[r[1]] = len(countries.list)
			countries.list = append(countries.list, Country{Alpha2: r[0], Alpha3: r[1], Numeric: r[2], Name: r[3]})
		}
	})
	return &countries
}

// Countries returns every ISO 3166-1 country, ordered by alpha-2 code. It is
// the list behind the mhp-country ValueSet.
func Countries() []Country {
	return append([]Country(nil), loadCountries().list...)
}

// CountryAlpha2 normalises an ISO 3166-1 alpha-2 or alpha-3 code (any
// letter case, surrounding spaces ignored) to alpha-2. It reports false for
// anything else, national code systems included: those need a ConceptMap.
func CountryAlpha2(code string) (string, bool) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != 2 && len(code) != 3 {
		return "", false
	}
	idx := loadCountries()
	i, ok := idx.byKey[code]
	if !ok {
		return "", false
	}
	return idx.list[i].Alpha2, true
}
