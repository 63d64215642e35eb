#!/usr/bin/env bash
# Runs the services on this machine, in dependency order (auth, memory, agent-runner, the chain
# orchestrator, the marketplace, the triggers service, then the gateway), each log line prefixed by its service's name.
# Ctrl-C (or any service exiting) stops them all.
# Used by `make run`, which has already started Postgres/Redis/NATS and built release binaries.
#
# Addresses come from the services' own SANKALPA_* defaults; set them in the environment to move
# a service. BIN_DIR says where the binaries are (default: $CARGO_TARGET_DIR/release).
set -euo pipefail

BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/sankalpa-target}/release}
WAIT_SECONDS=${SANKALPA_RUN_WAIT_SECONDS:-60}
export SANKALPA_LOG_FORMAT=${SANKALPA_LOG_FORMAT:-pretty}

auth_grpc=${SANKALPA_AUTH_GRPC_ADDR:-127.0.0.1:50051}
auth_http=${SANKALPA_AUTH_HTTP_ADDR:-127.0.0.1:9101}
memory_grpc=${SANKALPA_MEMORY_GRPC_ADDR:-127.0.0.1:50054}
memory_http=${SANKALPA_MEMORY_HTTP_ADDR:-127.0.0.1:9104}
agents_grpc=${SANKALPA_AGENTS_GRPC_ADDR:-127.0.0.1:50052}
agents_http=${SANKALPA_AGENTS_HTTP_ADDR:-127.0.0.1:9102}
chains_grpc=${SANKALPA_CHAINS_GRPC_ADDR:-127.0.0.1:50053}
chains_http=${SANKALPA_CHAINS_HTTP_ADDR:-127.0.0.1:9103}
market_grpc=${SANKALPA_MARKETPLACE_GRPC_ADDR:-127.0.0.1:50055}
market_http=${SANKALPA_MARKETPLACE_HTTP_ADDR:-127.0.0.1:9105}
triggers_grpc=${SANKALPA_TRIGGERS_GRPC_ADDR:-127.0.0.1:50056}
triggers_http=${SANKALPA_TRIGGERS_HTTP_ADDR:-127.0.0.1:9106}
# One replica of each, with no one to hand requests to: Ctrl-C need not wait out a drain delay.
export SANKALPA_DRAIN_DELAY_MS=${SANKALPA_DRAIN_DELAY_MS:-0}
# On a developer's machine webhooks and model providers may be on this machine over plain http;
# a deployment leaves these unset (https only, no loopback or private destinations).
export SANKALPA_TRIGGERS_ALLOW_HTTP=${SANKALPA_TRIGGERS_ALLOW_HTTP:-true}
export SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS=${SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS:-127.0.0.0/8,::1}
export SANKALPA_MODELS_ALLOW_HTTP=${SANKALPA_MODELS_ALLOW_HTTP:-true}
export SANKALPA_MODELS_ALLOW_PRIVATE_NETWORKS=${SANKALPA_MODELS_ALLOW_PRIVATE_NETWORKS:-127.0.0.0/8,::1}
gateway=${SANKALPA_GATEWAY_ADDR:-127.0.0.1:8080}

pids=()
names=()

stop_all() {
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'echo; echo "run-local: stopping"; stop_all; exit 0' INT TERM
trap stop_all EXIT

# start NAME BINARY: runs it in the background, its stdout and stderr prefixed with "[NAME] ".
start() {
  local name=$1 bin=$BIN_DIR/$2
  [ -x "$bin" ] || { echo "run-local: $bin not found; run 'make run' (it builds it)" >&2; exit 1; }
  # The prefixer ignores Ctrl-C so that it still passes on the service's shutdown lines.
  "$bin" > >(trap '' INT; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
  names+=("$name")
}

# wait_http NAME URL: until URL answers 200, the service's process died, or time runs out.
wait_http() {
  local name=$1 url=$2 deadline=$((SECONDS + WAIT_SECONDS)) pid=${pids[-1]}
  until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "run-local: $name exited during start" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "run-local: $name not ready at $url after ${WAIT_SECONDS}s" >&2; exit 1; }
    sleep 0.2
  done
}

start auth sankalpa-auth
wait_http auth "http://$auth_http/readyz"
start memory sankalpa-memory
wait_http memory "http://$memory_http/readyz"
start agent-runner sankalpa-agent-runner
wait_http agent-runner "http://$agents_http/readyz"
start chain-orchestrator sankalpa-chain-orchestrator
wait_http chain-orchestrator "http://$chains_http/readyz"
start marketplace sankalpa-marketplace
wait_http marketplace "http://$market_http/readyz"
start triggers sankalpa-triggers
wait_http triggers "http://$triggers_http/readyz"
start gateway sankalpa-gateway
wait_http gateway "http://$gateway/readyz"

cat <<EOF

  Sankalpa is running.
    gateway     http://$gateway        (the web console at /, REST, /docs, /openapi.json, /metrics)
    auth gRPC   $auth_grpc
    auth HTTP   http://$auth_http        (/healthz, /readyz, /metrics)
    memory gRPC $memory_grpc
    memory HTTP http://$memory_http        (/healthz, /readyz, /metrics)
    agent-runner gRPC        $agents_grpc
    agent-runner HTTP        http://$agents_http        (/healthz, /readyz, /metrics)
    chain-orchestrator gRPC  $chains_grpc
    chain-orchestrator HTTP  http://$chains_http        (/healthz, /readyz, /metrics)
    marketplace gRPC         $market_grpc
    marketplace HTTP         http://$market_http        (/healthz, /readyz, /metrics)
    triggers gRPC            $triggers_grpc
    triggers HTTP            http://$triggers_http        (/healthz, /readyz, /metrics)

  Try:  curl -s http://$gateway/api/status
        (agents, chains and their event streams: see docs/using-the-api.md, "Agents, chains and events";
         the marketplace: "Marketplace"; webhooks: "Webhooks")

  Ctrl-C stops everything.

EOF

# Any service exiting ends the run (and the EXIT trap stops the others).
set +e
wait -n "${pids[@]}"
status=$?
echo "run-local: a service exited (status $status); stopping the others" >&2
exit "$status"
