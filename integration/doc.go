// Package integration holds the tests that drive the real dfms binary and
// real services, the scripts that start those services (services.sh,
// test.sh) and the benchmark programs (cmd/...).
//
// TestMain builds the binary once; each test starts the processes it
// needs on loopback and stops them when it ends.
package integration
