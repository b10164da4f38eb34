// Package chunkpb is the Go code generated from chunk.proto, the protocol
// of the chunk service (dfms.chunk.v1.ChunkService): see that file for the
// contract of each call. Do not edit the .pb.go files: change chunk.proto
// and run `make generate`, which installs the pinned code generators.
package chunkpb
