#!/bin/sh
# build-stage.sh runs the build stage of deploy/docker/Dockerfile without
# Docker, from the repository root, so CI checks the very commands the
# image build runs. deploy/docker_test.go fails when the Dockerfile's RUN
# lines and the lines between the markers below differ.
#
#   VERSION=v1.2.3 COMMIT=abc1234 OUT=dist/docker deploy/docker/build-stage.sh
set -eu
cd "$(dirname "$0")/../.."
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
OUT=${OUT:-dist/docker}
CGO_ENABLED=0
GOFLAGS=-buildvcs=false
export VERSION COMMIT OUT CGO_ENABLED GOFLAGS
set -x
# BEGIN build stage
go mod download
go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o "${OUT}/remora" ./cmd/remora
"${OUT}/remora" version
# END build stage
