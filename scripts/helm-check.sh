#!/usr/bin/env bash
# `make helm-check`: lint, render and validate the Helm chart helm/sankalpa, offline, with Helm's
# own code. Helm is not a Debian package here, so Helm comes as a library from PyPI:
# helm-python-sdk (Helm v4's Go SDK compiled into libhelm_c, called through ctypes; no helm
# binary) and the Kubernetes API schemas from kubernetes-validate. Both are installed once into
# a venv under $HOME/.cache (idempotent: a stamp records what is installed); later runs need no
# network. The checks themselves are in scripts/helm_check.py.
#
# Operators with a helm binary run the same checks with:
#   helm lint --strict helm/sankalpa [-f helm/sankalpa/values-production.yaml]
#   helm template sankalpa helm/sankalpa -f helm/sankalpa/values-production.yaml | kubeconform -strict -summary
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${SANKALPA_HELM_VENV:-$HOME/.cache/sankalpa-helm-venv}
REQUIREMENTS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.2)
STAMP="$VENV/.sankalpa-requirements"
PYTHON=${PYTHON:-python3}

log() { printf 'helm-check: %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  log "installing ${REQUIREMENTS[*]} into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS[@]}"
  printf '%s' "${REQUIREMENTS[*]}" > "$STAMP"
fi

if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

# Helm logs an INFO line each time it follows helm/sankalpa/catalog (a link to catalog/).
exec "$VENV/bin/python" scripts/helm_check.py 2> >(grep -v 'found symbolic link in path' >&2)
