# DFMS — the two commands a fresh machine needs are `make run` and `make test`;
# both install what they use.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/dfms
PKG   := github.com/dfms/dfms
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(PKG)/server.Version=$(VERSION)

# Settings of `make run`.
ADDR  ?= 127.0.0.1:8080
DATA  ?= ./data
MOUNT ?= ./mnt

.PHONY: all build run server test test-short bench lint fmt vet tools clean generate

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dfms

## run: the embedded server (SQLite + local disk under $(DATA)) on $(ADDR),
## mounted on $(MOUNT) in the same process, until Ctrl-C. As root the mount
## needs no package; otherwise fuse3 (fusermount3) is installed first.
run: build
	@mkdir -p $(MOUNT)
	@[ "$$(id -u)" = 0 ] || command -v fusermount3 >/dev/null || \
		{ echo "installing fuse3 (for fusermount3)"; sudo apt-get update -q && sudo apt-get install -y -q fuse3; }
	./$(BIN) up $(MOUNT) --addr $(ADDR) --data $(DATA)

## server: the embedded server alone, without the mount.
server: build
	./$(BIN) server --addr $(ADDR) --data $(DATA)

## test: every test, with -race, against real PostgreSQL and S3 (versitygw)
## started on loopback by integration/test.sh, which installs what is missing.
test:
	integration/test.sh

## test-short: the tests that need no service (the others skip).
test-short:
	$(GO) test -race ./...

## bench: throughput figures (medians of several runs, ratios to baselines):
## chunking and hashing, REST upload/download of a 1 GiB file (one disk
## store against a cluster of 3 file:// nodes with 2 copies, in turn; also
## 3 versitygw nodes when DFMS_TEST_VERSITYGW names the program), repair
## after a storage node is lost against the disk's copy speed, then file
## workloads through both mounts (dfms up, dfms mount of a dfms server)
## against a local ext4 directory, go-fuse's loopback and the peers rclone
## and JuiceFS (needs root: loop and FUSE mounts, drop_caches). The first
## run builds the peers into ~/.cache/dfms/benchmount (minutes; a peer
## that cannot be built is skipped); rclone mount needs fusermount3, so
## fuse3 is installed first. BENCHMOUNT_FLAGS goes to benchmount, e.g.
## BENCHMOUNT_FLAGS='-targets local,loopback,dfms,remote' without peers.
BENCHMOUNT_FLAGS ?=
bench:
	@command -v fusermount3 >/dev/null || { echo "installing fuse3 (for fusermount3, which rclone mount needs)"; \
		S=$$([ "$$(id -u)" = 0 ] || echo sudo); $$S apt-get update -q && $$S apt-get install -y -q fuse3; } || \
		echo "no fusermount3: benchmount will skip rclone"
	$(GO) run ./integration/cmd/benchchunk
	$(GO) run ./integration/cmd/benchrest
	$(GO) run ./integration/cmd/benchrepair
	$(GO) run ./integration/cmd/benchmount $(BENCHMOUNT_FLAGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

## lint: gofmt check, go vet and staticcheck.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$$($(GO) env GOPATH)/bin/staticcheck ./...

## generate: the Go code of the chunk service's protocol
## (placement/store/grpcstore/chunkpb), from its .proto, with the pinned
## plugins below (installed with go install) and protoc from Debian's
## protobuf-compiler (installed if missing). The generated code is checked
## in: building needs none of this.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS := placement/store/grpcstore/chunkpb/chunk.proto
generate:
	@command -v protoc >/dev/null || { echo "installing protoc (protobuf-compiler)"; \
		S=$$([ "$$(id -u)" = 0 ] || echo sudo); $$S apt-get update -q && $$S apt-get install -y -q protobuf-compiler; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	B=$$($(GO) env GOPATH)/bin; protoc --plugin=protoc-gen-go=$$B/protoc-gen-go --plugin=protoc-gen-go-grpc=$$B/protoc-gen-go-grpc \
		--go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTOS)

clean:
	rm -rf bin
