#!/usr/bin/env bash
# Proves that scripts/proto-check.sh (`make lint`) passes on the committed contract and fails on
# a breaking change or an element without a comment. Runs in a throwaway clone of this
# repository, so the working tree is left alone, and compares with the clone's HEAD: the clone
# of a CI checkout need not hold main. A few seconds; `make test` runs it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -x "$ROOT/tools/buf/node_modules/.bin/buf" ] || { echo "proto-check-test: buf missing; run make setup" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --shared "$ROOT" "$tmp/repo"
ln -s "$ROOT/tools/buf/node_modules" "$tmp/repo/tools/buf/node_modules"
cd "$tmp/repo"
export SANKALPA_PROTO_AGAINST=HEAD
common=proto/sankalpa/v1/common.proto
fail() { echo "proto-check-test: FAILED: $*" >&2; exit 1; }

# expect_failure <what> <expected message>: proto-check.sh must exit non-zero and say it.
expect_failure() {
  if scripts/proto-check.sh >"$tmp/out" 2>&1; then fail "$1 passed"; fi
  grep -qF "$2" "$tmp/out" || { cat "$tmp/out" >&2; fail "$1 did not report: $2"; }
  git checkout -q -- proto
}

scripts/proto-check.sh >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "the committed contract did not pass"; }

sed -i 's/string page_token = 2;/string page_token = 3;/' "$common"
expect_failure "a renumbered field" 'Previously present field "2" with name "page_token" on message "PageRequest" was deleted.'

sed -i 's/string page_token = 2;/string cursor = 2;/' "$common"
expect_failure "a renamed field" 'Field "2" with name "cursor" on message "PageRequest" changed option "json_name" from "pageToken" to "cursor".'

sed -i 's/uint32 page_size = 1;/uint64 page_size = 1;/' "$common"
expect_failure "a retyped field" 'Field "1" with name "page_size" on message "PageRequest" changed type from "uint32" to "uint64".'

sed -i '/^  \/\/ The `next_page_token` of the previous page, unchanged; empty for the first page. A token$/,+1d' "$common"
grep -q 'string page_token = 2;' "$common" && ! grep -q 'previous page' "$common" || fail "the comment to remove was not found"
expect_failure "a field without a comment" 'Field "page_token" should have a non-empty comment for documentation.'

echo "proto-check-test: ok (a renumbered, a renamed and a retyped field and a missing comment are caught)" >&2
