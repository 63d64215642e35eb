#!/usr/bin/env bash
# Lints proto/ (buf lint, rules in proto/buf.yaml) and checks it for breaking changes (buf
# breaking, FILE rules) against the commit this branch forked from main: the merge base, not
# main's tip, so a branch behind main is not blamed for what main added since. On main itself
# that is HEAD, which checks uncommitted edits. SANKALPA_PROTO_AGAINST=<git rev> compares with
# another commit (a release tag, say). buf comes from tools/buf (`make setup` installs it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUF="$ROOT/tools/buf/node_modules/.bin/buf"
[ -x "$BUF" ] || { echo "proto-check: $BUF missing; run make setup" >&2; exit 1; }
cd "$ROOT"

against=${SANKALPA_PROTO_AGAINST:-}
if [ -z "$against" ]; then
  # A clone made on another branch has main only as origin/main.
  for main in main origin/main; do
    if against=$(git merge-base HEAD "$main" 2>/dev/null); then break; fi
  done
  [ -n "$against" ] || {
    echo "proto-check: no merge base with main or origin/main (a shallow clone?); fetch main or set SANKALPA_PROTO_AGAINST=<rev>" >&2
    exit 1
  }
fi
against=$(git rev-parse --verify "$against^{commit}")

"$BUF" lint proto
# A commit id as ref works in a clone and in a worktree (where .git is a file) alike.
"$BUF" breaking proto --against ".git#ref=$against,subdir=proto"
echo "proto-check: lint clean, nothing breaking against ${against:0:12}" >&2
