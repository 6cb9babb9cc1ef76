#!/usr/bin/env bash
# Installs what the local stack needs; each step is skipped when its result exists.
# Independent steps run in parallel; each logs to .stack/logs/install-<step>.log.
#   stack/install.sh              what `make up` needs
#   stack/install.sh --test-tools also the tools only the tests and benchmark use (helm, ghz)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOGS=$ROOT/.stack/logs
mkdir -p "$LOGS"

APT_PACKAGES=(redis-server redis-tools mariadb-server mariadb-client)
GRPCURL_VERSION=v1.9.4
HELM_VERSION=v3.22.0
GHZ_VERSION=v0.93.0
# The Dockerfile's GRPC_HEALTH_PROBE_VERSION (tests/integration/test_tls_probes.py checks).
GRPC_HEALTH_PROBE_VERSION=v0.4.63
KAFKA_LIBS=$ROOT/.stack/kafka/libs
KAFKA_POM=$ROOT/stack/kafka/pom.xml

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "apt: installing ${missing[*]}"
    # Keep apt from starting the system mariadb/redis services; we run our own.
    local added_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" || { [ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; return 1; }
    [ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    # On a systemd machine the units still get enabled for the next boot.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now mariadb redis-server || true
    fi
}

# The exact, hash-checked versions of requirements-dev.lock (`make lock` writes it from
# pyproject.toml), then the project itself without resolving anything again. Redone when
# either file is newer than the stamp.
install_venv() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    local f
    for f in pyproject.toml requirements-dev.lock; do
        [ -f "$f" ] || { echo "$f missing"; return 1; }
    done
    if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ] \
        || [ requirements-dev.lock -nt .venv/.installed ]; then
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -r requirements-dev.lock
        .venv/bin/pip install -q --no-deps -e .
        touch .venv/.installed
    fi
}

install_kafka() {
    if [ -f "$KAFKA_LIBS/.stamp" ] && [ ! "$KAFKA_POM" -nt "$KAFKA_LIBS/.stamp" ]; then
        return 0
    fi
    # Copy into a temp dir first so an interrupted run never looks complete.
    rm -rf "$KAFKA_LIBS.tmp"
    mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS.tmp"
    rm -rf "$KAFKA_LIBS"
    mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
    touch "$KAFKA_LIBS/.stamp"
}

# go_tool BINARY MODULE PACKAGE VERSION: `go install PACKAGE@VERSION` unless that version of
# MODULE is already the binary in $(go env GOPATH)/bin.
go_tool() {
    command -v go >/dev/null || { echo "go not found: needed to install $1"; return 1; }
    local bin
    bin=$(go env GOPATH)/bin/$1
    if [ -x "$bin" ] && go version -m "$bin" | grep -q "$2[[:space:]]*$4"; then
        return 0
    fi
    GOBIN=$(go env GOPATH)/bin go install "$3@$4"
}

install_grpcurl() {
    go_tool grpcurl github.com/fullstorydev/grpcurl \
        github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION"
}

# Test tools: helm lints and renders the chart (tests/integration/test_deploy.py); ghz drives the
# benchmark (tests/integration/test_bench_quick.py runs it at tiny scale).
install_helm() {
    go_tool helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
}

install_ghz() {
    go_tool ghz github.com/bojand/ghz github.com/bojand/ghz/cmd/ghz "$GHZ_VERSION"
}

# The chart's TLS probes run it (tests/integration/test_tls_probes.py runs their command).
install_grpc_health_probe() {
    go_tool grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe \
        github.com/grpc-ecosystem/grpc-health-probe "$GRPC_HEALTH_PROBE_VERSION"
}

steps=(apt venv kafka grpcurl)
[ "${1:-}" = --test-tools ] && steps+=(helm ghz grpc_health_probe)
declare -A pids
for s in "${steps[@]}"; do
    "install_$s" > "$LOGS/install-$s.log" 2>&1 &
    pids[$s]=$!
done
failed=0
for s in "${steps[@]}"; do
    if wait "${pids[$s]}"; then
        echo "install: $s ok"
    else
        echo "install: $s FAILED (log: .stack/logs/install-$s.log):" >&2
        tail -n 20 "$LOGS/install-$s.log" >&2
        failed=1
    fi
done
exit $failed
