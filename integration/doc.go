// Package integration holds the tests that drive the real dfms binary and
// real services, the scripts that start those services (services.sh,
// test.sh) and the benchmark programs (cmd/...).
//
// TestMain builds the binary once; each test starts the processes it
// needs on loopback and stops them when it ends.
//
// # make test
//
// `make test` runs test.sh: it starts a throwaway PostgreSQL 15 cluster
// (as the postgres user), versitygw (an Apache-2.0 S3 server, built with
// go install on first use) and Redis on loopback with random credentials
// (services.sh), installs rsync, git and sqlite3 for the mount tests and
// a C toolchain with autoconf and automake to build pjdfstest, runs
// `go test -race ./...` with every service, FUSE, those tools and
// pjdfstest required (DFMS_TEST_REQUIRE: a test that would skip for lack
// of one fails instead), and stops what it started. It needs root on a
// Debian machine.
// `make test-short` runs the same tests without services; those that need
// one skip.
//
// # The suites
//
//   - server/meta/metatest: one conformance suite, run on SQLite and on
//     PostgreSQL;
//   - placement/store/storetest: one conformance suite, run on file://, on
//     S3, and on grpc:// and grpcs:// (mutual TLS, a CA made by the test)
//     through a chunk service over a disk store (server/chunkservice, which
//     also checks that corrupt, truncated or oversized puts store nothing and
//     that every error kind survives the round trip);
//   - server/files: the file layer on sqlite+file and on postgres+s3 —
//     dedup across files (stored bytes asserted), exact reference counts
//     for 64 MiB of zeros through overwrite and purge, a failure injected
//     before commit changes nothing, corrupted chunks are detected;
//   - chunking: golden, fuzz, stability (one inserted byte in 64 MiB keeps
//     ≥ 95 % of chunks) and average-size tests;
//   - server/api: the OpenAPI document is compared with the router both
//     ways, and about 170 real responses are checked against its schemas;
//     fuzz tests on request decoding;
//   - server/auth: an attack table of forged, expired, confused and
//     replayed tokens;
//   - server/ratelimit/ratelimittest: one suite, run on the in-memory
//     limiter and on Redis;
//   - workers/gc: sweeps, orphans, expired uploads, the races between
//     writes and collections, and a dry run that changes nothing and
//     counts what the next run deletes; and, here,
//     TestGCWorkersStalledLockLost: two `dfms worker gc` processes over
//     100 rounds of "upload X while the sweep deletes X", one stopped
//     (SIGSTOP) while it holds the lock and its PostgreSQL sessions ended,
//     the other taking over;
//   - roles as processes, here: TestRolesAsProcesses (two `dfms gateway`
//     and a `dfms worker` of each kind on PostgreSQL and three S3 nodes:
//     cross-gateway downloads, every role's /health /ready /metrics, kill
//     -9 and restart of each worker, `dfms gc --dry-run`), TestRedisDown
//     (a gateway's Redis limiter stopped, fail-open and fail-closed);
//   - workers/fsck: damage of each kind found and repaired on one disk
//     store and on a cluster of disk nodes, the recount in many spans of
//     the hash space, repairs racing writes and purges; and, here,
//     TestFsckCluster: `dfms fsck` over PostgreSQL and three S3 nodes with
//     a corrupt copy, a chunk gone from every node and a skewed count;
//   - cmd/dfms: the CLI against the real handler (resumed uploads and
//     downloads, token refresh), and `dfms up` as a real process with
//     go-fuse's POSIX suite run through its mount;
//   - fusefs: real FUSE mounts (as root, no helper needed): go-fuse's
//     posixtest suite plus our cases (cp -a / tar round trips with diff -r,
//     editor-style saves, truncate, rename variants, chmod/chown/utimens,
//     .versions, locks, unmount while busy) and real tools: rsync -a twice
//     (the second transfers nothing), git init/add/commit/status/fsck,
//     sqlite3 with 10,000 rows and PRAGMA integrity_check, directory times;
//   - fusefs/vfs: random writes, truncates and commits checked against a
//     model, one-byte edits cost at most two chunks, appends cut as one
//     write would, crash recovery from the journal, and write-back (closed
//     files committed in batches, a version per close however soon the
//     file is reopened, retries while the server is down, a crash before
//     the commit); an editor's save keeps the history in .versions; the
//     metadata cache (its generations, directories known complete, own
//     changes seen at once and others' within the feed's latency, no
//     backend read for cached stats); namespace changes made durable by
//     fsync, Sync and Close with a barrier only when needed;
//   - cmd/dfms TestMountRemote: `dfms mount` of a `dfms up` server over
//     HTTP — posixtest, changes through the REST API and between two
//     mounts visible within a second, 200 files closed in a burst committed
//     in batched requests, a one-byte edit of 256 MiB uploading at most two
//     chunks (server metrics), a second read fetching no chunk, and kill -9
//     of the daemon (fsync'ed data is on the server, unclosed writes are
//     committed by the next mount), and the log rotation (an appender
//     holding a file renamed over another with history) on both mounts;
//   - cmd/dfms TestUpStress, the mount's data-safety stress test: 4 writers
//     and a reader per file on 20 files for 60 s through a `dfms up` mount
//     (writes, appends, holes, truncates, saves renamed over, fsyncs),
//     killed with SIGKILL and started again in the middle, each file's
//     history checked against a model of the writers' changes (a version
//     per close or fsync, nothing else, nothing lost, each close committed
//     within 2 s). DFMS_STRESS_DURATION=15s shortens it; DFMS_STRESS_SEED
//     repeats a run's choices;
//   - cmd/dfms TestMountServerRestart: a workload on `dfms mount` while its
//     server is killed and restarted 5 s later sees no error, and every
//     file written is on the server afterwards;
//   - cmd/dfms TestPJDFSTest: pjdfstest, the POSIX file-system suite
//     (built into a scratch directory, never copied here), on a `dfms up`
//     mount and on a `dfms mount` of a `dfms server`, both with
//     --allow-other: every failing assertion must be listed, with its
//     reason, in cmd/dfms/testdata/pjdfstest-expected.txt, and at least
//     99.5 % must pass on each mount;
//   - integration TestChunkService: a real `dfms server` whose chunks.url
//     is grpc:// over a real `dfms chunk-service`: uploads and downloads
//     byte-exact, the chunks in the service's directory, /ready following
//     the service down and up;
//   - integration (this package): the real `dfms server` process — zero
//     configuration, PostgreSQL + S3 by flags, environment and config
//     file, graceful shutdown, the README's curl sequence (TestAPI, the
//     readme case: the same requests, verbatim but for the address, the
//     token and the ids), cross-user isolation on every endpoint, JWT
//     attacks, bad input, rate limits on memory and Redis, and a corrupt
//     chunk cut from a download.
package integration
