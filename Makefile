# sentibench build. `make` builds bin/sentibench; `make train` and `make test` are the README's
# two commands. Run `make help` for the list.

GO       ?= go
BIN      := bin/sentibench
PKGS     := ./...
# The real IMDB archive, when a local copy sits beside the checkout (as ../shared does here);
# otherwise sentibench downloads the official archive into its cache on first use.
DATA     ?= $(firstword $(wildcard ../shared/data/imdb/aclImdb_v1_labelled.tar.gz) $(SENTIBENCH_DATA))
MODEL    ?= lstm
DROPOUT  ?= 0.2
TRAIN_ARGS ?=
# IMDB's 50,000 unlabelled reviews, for make wordvec (else taken from the official archive).
UNSUP    ?= $(firstword $(wildcard ../shared/data/imdb/aclImdb_v1_unsup.tar.gz))
VECTORS  ?= runs/imdb-100d.txt

.PHONY: all build mpi mpi-test test bench fuzz lint staticcheck train wordvec help clean validate-deploy loadtest kernels gpu gpu-compile gpu-bundle

all: build

help:
	@echo "make build   build $(BIN)"
	@echo "make train   train the recipe's $(MODEL) model on IMDB (MODEL=lstm|cnn|bigru, DROPOUT=, DATA=, TRAIN_ARGS=)"
	@echo "make wordvec word2vec vectors of the train split and unlabelled reviews into $(VECTORS) (UNSUP=);"
	@echo "             then make train TRAIN_ARGS=\"--glove $(VECTORS) --clip-norm 1\" (the README's best lstm)"
	@echo "make test    run every test (short, no network, no GPU needed)"
	@echo "make mpi     build $(BIN) with MPI (tag sentibench_mpi; needs libopenmpi-dev): mpirun -np N $(BIN) train ..."
	@echo "make mpi-test  the MPI build's tests (a real mpirun -np 2; needs openmpi-bin)"
	@echo "make bench   run the Go benchmarks (ops, data pipeline)"
	@echo "make fuzz    search every fuzz target for FUZZTIME each (default 60s; make test runs their seeds)"
	@echo "make lint    gofmt check and go vet"
	@echo "make staticcheck  staticcheck (from the Go module proxy; CI runs it)"
	@echo "make validate-deploy  check deploy/ (kubeconform, hadolint; tools from the Go proxy and PyPI)"
	@echo "make loadtest RUNS=\"runs/cnn-1 ...\"  throughput and latency of sentibench serve"
	@echo "make gpu     build $(BIN) with CUDA (tag sentibench_cuda; needs nvcc, the CUDA headers, cuBLAS:"
	@echo "             a CUDA toolkit, or eval \"\$$(scripts/cuda-toolkit.sh DIR)\" for one from PyPI)"
	@echo "make gpu-compile  CI's check of the GPU code without a GPU (scripts/ci-gpu-compile.sh)"
	@echo "make gpu-bundle   prepare .gpu/ for scripts/gpu-check.sh on a GPU machine (scripts/gpu-check.md)"

build:
	$(GO) build -o $(BIN) ./cmd/sentibench

# The MPI build (cgo against OpenMPI's libmpi: apt-get install openmpi-bin libopenmpi-dev):
# mpirun -np N bin/sentibench train ... trains one run on N ranks.
mpi:
	$(GO) build -tags sentibench_mpi -o $(BIN) ./cmd/sentibench

# The MPI build's tests: a real mpirun -np 2 against one process (skips without mpirun).
mpi-test:
	$(GO) vet -tags sentibench_mpi ./train/ ./distill/ ./cmd/sentibench/
	$(GO) test -count=1 -tags sentibench_mpi -run 'MPI|DataParallel|LocalComm|OneRankComm' ./train/ ./distill/ ./cmd/sentibench/

test: lint
	$(GO) test -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	scripts/fuzz.sh

# staticcheck, pinned; fetched from the Go module proxy on first use.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

train: build
	$(BIN) train --model $(MODEL) --dropout $(DROPOUT) $(if $(DATA),--data $(DATA)) $(TRAIN_ARGS)

wordvec: build
	@mkdir -p $(dir $(VECTORS))
	$(BIN) wordvec $(if $(DATA),--data $(DATA)) $(if $(UNSUP),--unsup $(UNSUP),--with-unsup) --out $(VECTORS)

validate-deploy:
	scripts/validate-deploy.sh

loadtest:
	scripts/loadtest.sh $(RUNS)

# The GPU build. The kernels (nn/gpu/kernels.cu) are compiled ahead of time with nvcc and
# embedded; nvcc, cuda.h, cublas_v2.h and libcublas come from /usr/local/cuda or from the
# environment scripts/cuda-toolkit.sh prints.
kernels:
	scripts/build-kernels.sh

gpu: kernels
	$(GO) build -tags sentibench_cuda -o $(BIN) ./cmd/sentibench

gpu-compile:
	scripts/ci-gpu-compile.sh

gpu-bundle:
	scripts/gpu-bundle.sh

clean:
	rm -rf bin .gpu nn/gpu/kernels.fatbin
