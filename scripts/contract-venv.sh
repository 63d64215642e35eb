#!/usr/bin/env bash
# Installs what the tests drive besides Rust into a venv under $HOME/.cache: grpcio with its
# reflection and health stubs (a gRPC client that is not tonic, for the reflection test),
# schemathesis (the OpenAPI test) and moto's server (an S3-compatible server on the loopback, for
# the object store's S3 round trips). Idempotent: a stamp records what is installed, and later runs
# need no network. Prints the venv's python on stdout.
set -euo pipefail

VENV=${SANKALPA_CONTRACT_VENV:-$HOME/.cache/sankalpa-contract-venv}
REQUIREMENTS=(grpcio==1.85.1 grpcio-reflection==1.85.1 grpcio-health-checking==1.85.1 schemathesis==4.32.5 "moto[s3,server]==5.2.1")
STAMP="$VENV/.sankalpa-requirements"
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  printf 'contract-venv: installing %s into %s\n' "${REQUIREMENTS[*]}" "$VENV" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS[@]}"
  printf '%s' "${REQUIREMENTS[*]}" > "$STAMP"
fi
printf '%s\n' "$VENV/bin/python"
