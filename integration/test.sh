#!/usr/bin/env bash
# Runs every test of the project against real services: starts them on
# loopback (integration/services.sh), runs `go test -race` over all
# packages with every service required (a skip becomes a failure), and stops
# what it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

source integration/services.sh
trap svc_down EXIT INT TERM

svc_up postgres s3 redis
export DFMS_TEST_REQUIRE=postgres,s3,redis,fuse
go test -race -count=1 -timeout 25m "$@" ./...
