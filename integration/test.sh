#!/usr/bin/env bash
# Runs every test of the project against real services: starts them on
# loopback (integration/services.sh), installs the programs the mount tests
# run (rsync, git, sqlite3) and what builds pjdfstest, runs `go test -race`
# over all packages with every service, those programs and pjdfstest
# required (a skip for lack of one becomes a failure), and stops what it
# started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

source integration/services.sh
trap svc_down EXIT INT TERM

# The programs that fusefs/tools_test.go runs on a real mount.
apt_install rsync git sqlite3
# What cmd/dfms/pjdfstest_test.go builds the POSIX suite pjdfstest with
# (into a scratch directory) and what its scripts run.
apt_install build-essential autoconf automake openssl
svc_up postgres s3 redis
export DFMS_TEST_REQUIRE=postgres,s3,redis,fuse,tools,pjdfstest
go test -race -count=1 -timeout 25m "$@" ./...
