//go:build !cgo

package blas

import "fmt"

func loadOpenBLAS(path string) (Impl, error) {
	if path == "" {
		path = "OpenBLAS"
	}
	return nil, fmt.Errorf("this binary was built without cgo, so %s cannot be loaded", path)
}
