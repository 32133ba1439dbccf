package examples

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
)

// Synthetic is the generated population added to each demo source (see
// package population): Options by source id. The seed and sizes are fixed
// so that the demo's tables are the same on every machine.
var Synthetic = map[string]population.Options{
	"de-sample": {Seed: 2025, Patients: 800, Source: "de-sample", Country: "DE", Profile: "de-basis"},
	"nl-sample": {Seed: 2025, Patients: 600, Source: "nl-sample", Country: "NL", Profile: "nl-core"},
	"ua-sample": {Seed: 2025, Patients: 500, Source: "ua-sample", Country: "UA", Profile: "ips"},
	"us-sample": {Seed: 2025, Patients: 500, Source: "us-sample", Country: "US", Profile: "us-core"},
}

// chunk is how many people one generated file holds: sources parse their
// files in parallel.
const chunk = 200

// Builtin is FS with the synthetic population of each source as
// <source>/synthetic-NN.ndjson (200 people a file), generated on first use and kept for the life
// of the process. It is what `mhg serve` serves; FS alone holds only the
// hand-made samples.
var Builtin fs.FS = builtin{}

type builtin struct{}

var generated = sync.OnceValue(func() map[string][]byte {
	out := map[string][]byte{}
	for id, opts := range Synthetic {
		for n := 0; n*chunk < opts.Patients; n++ {
			var b []byte
			for i := n * chunk; i < min((n+1)*chunk, opts.Patients); i++ {
				rs, err := population.Resources(opts, population.Generate(opts, i))
				if err != nil {
					// The options are fixed above; an error is a bug in them.
					panic("examples: synthetic population: " + err.Error())
				}
				for _, r := range rs {
					b = append(append(b, r...), '\n')
				}
			}
			out[fmt.Sprintf("%s/synthetic-%02d.ndjson", id, n)] = b
		}
	}
	return out
})

// Immutable says the file system never changes, so that what is read from
// it may be kept.
func (builtin) Immutable() bool { return true }

func (builtin) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if b, ok := generated()[name]; ok {
		return &memFile{name: path.Base(name), r: bytes.NewReader(b), size: int64(len(b))}, nil
	}
	f, err := FS.Open(name)
	if err != nil {
		return nil, err
	}
	if _, ok := Synthetic[name]; ok {
		return &dirFile{File: f, name: name}, nil
	}
	return f, nil
}

// ReadDir lists a directory, with the generated file in each source folder.
func (b builtin) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(FS, name)
	if err != nil {
		return nil, err
	}
	if _, ok := Synthetic[name]; ok {
		for file, b := range generated() {
			if dir, base := path.Split(file); dir == name+"/" {
				entries = append(entries, fs.FileInfoToDirEntry(memInfo{name: base, size: int64(len(b))}))
			}
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	}
	return entries, nil
}

type dirFile struct {
	fs.File
	name string
	read bool
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.read {
		if n > 0 {
			return nil, io.EOF
		}
		return nil, nil
	}
	d.read = true
	return builtin{}.ReadDir(d.name)
}

type memFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{name: f.name, size: f.size}, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
