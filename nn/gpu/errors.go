package gpu

import "errors"

// ErrNoCUDA is Open's error in a binary built without the sentibench_cuda tag.
var ErrNoCUDA = errors.New("this build of sentibench has no CUDA support: it was built without the sentibench_cuda tag (build it with `make gpu`)")
