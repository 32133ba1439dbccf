package repository

import (
	"io/fs"
)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return sub
}
