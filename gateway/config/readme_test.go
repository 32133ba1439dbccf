package config

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

var update = flag.Bool("update", false, "rewrite the configuration table in the README from the Config struct")

// The README's configuration table lies between these lines.
const (
	tableStart = "<!-- config table: generated from gateway/config by `go test ./gateway/config -run TestREADMEConfigTable -update` -->"
	tableEnd   = "<!-- end of config table -->"
)

// TestREADMEConfigTable: the README's configuration table is the Config
// struct: every field, its YAML path, the MHG_* variable the loader reads
// for it, its default, and its doc comment. Run with -update to rewrite it.
func TestREADMEConfigTable(t *testing.T) {
	docs := fieldDocs(t)
	rows := tableRows(t, reflect.TypeOf(Config{}), reflect.ValueOf(Default()), "", EnvPrefix, true, docs)

	// The variables named are exactly those the loader reads.
	params, err := env.GetFieldParamsWithOptions(&Config{}, env.Options{Prefix: EnvPrefix})
	if err != nil {
		t.Fatal(err)
	}
	var read, named []string
	for _, p := range params {
		read = append(read, p.Key)
	}
	for _, r := range rows {
		if r.env != "" {
			named = append(named, r.env)
		}
	}
	slices.Sort(read)
	slices.Sort(named)
	if !slices.Equal(read, named) {
		t.Fatalf("the table names the variables\n%v\nbut the loader reads\n%v", named, read)
	}

	var b strings.Builder
	b.WriteString("| field | env | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		envCell := "—"
		if r.env != "" {
			envCell = "`" + r.env + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.path, envCell, r.def, r.doc)
	}
	table := b.String()

	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(readme), tableStart+"\n")
	if !ok {
		t.Fatalf("README has no line %q", tableStart)
	}
	current, after, ok := strings.Cut(rest, tableEnd)
	if !ok {
		t.Fatalf("README has no line %q", tableEnd)
	}
	if current == table {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(before+tableStart+"\n"+table+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the README's configuration table does not match the Config struct; run\n  go test ./gateway/config -run TestREADMEConfigTable -update\nwant:\n%s", table)
}

type tableRow struct {
	path, env, def, doc string
}

// tableRows lists the fields of typ (value v, nil for list elements) under
// the YAML path prefix, with their environment variables when the loader reads them.
func tableRows(t *testing.T, typ reflect.Type, v reflect.Value, prefix, envPrefix string, envOK bool, docs map[string]string) []tableRow {
	t.Helper()
	var rows []tableRow
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		key := path.Base(typ.PkgPath()) + "." + typ.Name() + "." + f.Name
		doc := docs[key]
		if doc == "" {
			t.Errorf("%s has no doc comment", key)
		}
		var fv reflect.Value
		if v.IsValid() {
			fv = v.Field(i)
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)):
			prefix, nested := f.Tag.Lookup("envPrefix")
			rows = append(rows, tableRows(t, f.Type, fv, p, envPrefix+prefix, envOK && nested, docs)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			rows = append(rows, tableRow{path: p + "[]", def: defaultCell(fv), doc: doc})
			rows = append(rows, tableRows(t, f.Type.Elem(), reflect.Value{}, p+"[]", "", false, docs)...)
		default:
			r := tableRow{path: p, def: defaultCell(fv), doc: doc}
			if key, ok := f.Tag.Lookup("env"); ok && envOK && key != "-" {
				r.env = envPrefix + key
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// defaultCell renders a default value for the table.
func defaultCell(v reflect.Value) string {
	if v.IsValid() && v.Kind() == reflect.Bool {
		return fmt.Sprintf("`%t`", v.Bool())
	}
	if !v.IsValid() || v.IsZero() {
		return "—"
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return "`" + x.String() + "`"
	case int64, int:
		n := v.Int()
		switch {
		case n >= 1<<20 && n%(1<<20) == 0:
			return fmt.Sprintf("%d MiB", n>>20)
		case n >= 1<<10 && n%(1<<10) == 0:
			return fmt.Sprintf("%d KiB", n>>10)
		}
		return fmt.Sprintf("`%d`", n)
	case []Source:
		ids := make([]string, len(x))
		for i, s := range x {
			ids[i] = "`" + s.ID + "`"
		}
		return "the demo sources " + strings.Join(ids, ", ")
	}
	return fmt.Sprintf("`%v`", v.Interface())
}

// fieldDocs reads the doc comments of the fields of every struct in
// config.go and in the mappings types Config holds (the identifier
// registry's entries), keyed "package.Type.Field", each made one line for
// a table cell.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	docs := map[string]string{}
	for _, file := range []string{"config.go", filepath.Join("..", "..", "mappings", "identifiers.go")} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		structDocs(f, docs)
	}
	return docs
}

// structDocs adds the field doc comments of the structs of f to docs.
func structDocs(f *ast.File, docs map[string]string) {
	pkg := f.Name.Name
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			text := strings.Join(strings.Fields(fld.Doc.Text()), " ")
			text = strings.ReplaceAll(text, "|", `\|`)
			for _, n := range fld.Names {
				docs[pkg+"."+ts.Name.Name+"."+n.Name] = text
			}
		}
		return false
	})
}
