#!/usr/bin/env bash
# gen_onnx_pb.sh -- regenerates internal/onnxpb/onnx.pb.go, the Go types of the ONNX model format,
# from ONNX's own onnx.proto (no hand-written protobuf anywhere in the exporter).
#
# Provenance, pinned:
#   onnx.proto     from the `onnx` wheel on PyPI, version $ONNX_VERSION (the file onnx/onnx.proto
#                  it ships: the standard, non-ML ONNX IR; Apache-2.0, see the file's header),
#                  copied to internal/onnxpb/onnx.proto;
#   protoc         from the `grpcio-tools` wheel on PyPI, version $GRPCIO_TOOLS_VERSION
#                  (python -m grpc_tools.protoc);
#   protoc-gen-go  google.golang.org/protobuf/cmd/protoc-gen-go at the version of
#                  google.golang.org/protobuf in go.mod (the runtime the generated code needs).
# Needs python3 with pip, Go, and PyPI and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
ONNX_VERSION=1.23.2
GRPCIO_TOOLS_VERSION=1.85.4
PROTOBUF_GO_VERSION=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp/py" \
  "onnx==$ONNX_VERSION" "grpcio-tools==$GRPCIO_TOOLS_VERSION" protobuf
GOBIN="$tmp/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOBUF_GO_VERSION"

mkdir -p "$tmp/src/onnx"
cp "$tmp/py/onnx/onnx.proto" "$tmp/src/onnx/onnx.proto"
cp "$tmp/py/onnx/onnx.proto" internal/onnxpb/onnx.proto
mkdir -p "$tmp/out"
PYTHONPATH="$tmp/py" python3 -m grpc_tools.protoc \
  --plugin=protoc-gen-go="$tmp/bin/protoc-gen-go" \
  -I "$tmp/src" \
  --go_out="$tmp/out" --go_opt=paths=source_relative \
  --go_opt=Monnx/onnx.proto=github.com/sentibench/sentibench/internal/onnxpb \
  onnx/onnx.proto
cp "$tmp/out/onnx/onnx.pb.go" internal/onnxpb/onnx.pb.go
echo "internal/onnxpb/onnx.pb.go: onnx $ONNX_VERSION, grpcio-tools $GRPCIO_TOOLS_VERSION" \
  "($(PYTHONPATH="$tmp/py" python3 -m grpc_tools.protoc --version)), protoc-gen-go $PROTOBUF_GO_VERSION"
