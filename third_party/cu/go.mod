module github.com/sentibench/sentibench/third_party/cu

go 1.21

require (
	github.com/google/uuid v1.3.0
	github.com/pkg/errors v0.9.1
)
