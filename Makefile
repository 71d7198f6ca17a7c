GO ?= go

.PHONY: build test demo bench fuzz

build:
	$(GO) build -o bin/gotrain ./cmd/gotrain

# The whole test suite; .ci/run calls exactly this.
test:
	$(GO) vet ./...
	# other platforms: the pure-Go kernels (arm64) and no mmap/rusage (windows)
	GOARCH=arm64 $(GO) vet ./...
	GOOS=windows $(GO) build ./...
	$(GO) test -count=1 ./...
	# the kernels' other dispatch levels: the pure-Go twins alone, and AVX2 as the default
	$(GO) vet -tags purego ./kernels/...
	$(GO) test -count=1 -short -tags purego ./kernels/...
	GOTRAIN_KERNELS=avx2 $(GO) test -count=1 -short ./kernels/...
	$(GO) test -count=1 -race -short ./model/... ./train ./dist ./predict ./serve

demo: build
	./scripts/demo.sh

bench: build
	./scripts/bench.sh
