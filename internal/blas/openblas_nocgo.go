//go:build !cgo

package blas

import "errors"

func loadOpenBLAS(string) (Impl, error) {
	return nil, errors.New("this binary was built without cgo, so OpenBLAS cannot be loaded")
}
