#!/usr/bin/env bash
# A/B of two revisions in one run (make bench-compare BASE=<rev> [ROUNDS=3]): BASE is checked
# out in a temporary worktree and built into a target folder of its own
# ($CARGO_TARGET_DIR-base, kept between comparisons); the working tree's release build is
# `make release`'s. Then the two benches run interleaved, A B A B ..., each against a fresh
# database on the same Postgres, Redis and NATS, and the working tree's bench compares them:
# per scenario and concurrency, the median of the rounds' head/base ratios and its spread.
# Timings on a shared machine vary by 20% from run to run; only an interleaved A/B can tell a
# change from the weather.
# Without a BASE revision it compares two settings of the working tree instead: the same
# binaries, base run with the variables of BASE_ENV and head with those of HEAD_ENV (each a
# space-separated list of NAME=value).
set -euo pipefail

base=${1-}
rounds=${2:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
head_target=${CARGO_TARGET_DIR:?CARGO_TARGET_DIR must be set (make sets it)}
head_revision="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD || echo -dirty)"
read -r -a base_env <<< "${BASE_ENV-}"
read -r -a head_env <<< "${HEAD_ENV-}"
if [ -n "$base" ]; then
  base_target="$head_target-base"
  base_revision=$(git -C "$root" rev-parse --short "$base^{commit}")
else
  [ ${#base_env[@]} -gt 0 ] || [ ${#head_env[@]} -gt 0 ] || {
    echo "usage: scripts/bench-compare.sh <base revision> [rounds], or BASE_ENV/HEAD_ENV set" >&2
    exit 2
  }
  base_target=$head_target
  base_revision=$head_revision
fi
results="$root/bench-results/compare-$(date -u +%Y%m%dT%H%M%SZ)-$base_revision-$head_revision"
psql_admin() { PGOPTIONS='--client-min-messages=warning' psql -X -w -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
database=sankalpa_bench_compare

worktree=$(mktemp -d)/base
cleanup() {
  git -C "$root" worktree remove --force "$worktree" 2>/dev/null || true
  psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
}
trap cleanup EXIT

if [ -n "$base" ]; then
  echo "bench-compare: building $base_revision into $base_target" >&2
  git -C "$root" worktree add --detach --quiet "$worktree" "$base_revision"
  (cd "$worktree" && CARGO_TARGET_DIR="$base_target" make --no-print-directory release)
else
  echo "bench-compare: settings, base ${base_env[*]:-(none)} against head ${head_env[*]:-(none)}" >&2
fi

mkdir -p "$results/base" "$results/head"
for round in $(seq 1 "$rounds"); do
  for side in base head; do
    target=$head_target revision=$head_revision settings=("${head_env[@]}")
    [ "$side" = base ] && target=$base_target revision=$base_revision settings=("${base_env[@]}")
    echo "bench-compare: round $round of $rounds, $side ($revision)" >&2
    psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
    env "${settings[@]}" CARGO_TARGET_DIR="$target" \
      SANKALPA_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database" \
      SANKALPA_BENCH_REVISION="$revision" SANKALPA_BENCH_RESULTS="$results/$side" \
      "$target/release/sankalpa-bench" > "$results/$side/round-$round.jsonl"
  done
done

"$head_target/release/sankalpa-bench" compare \
  --base "$results"/base/round-*.jsonl --head "$results"/head/round-*.jsonl \
  | tee "$results/comparison.jsonl"
echo "bench-compare: every round's lines are in $results" >&2
