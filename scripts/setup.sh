#!/usr/bin/env bash
# Installs (Debian packages, cargo-machete) and starts what Sankalpa needs on a developer or CI
# machine: PostgreSQL on 5432, Redis on 6379, NATS with JetStream on 4222, protoc for code
# generation, buf for the proto checks, the web console's and the VS Code extension's npm
# dependencies, Chromium and the contract tests' Python venv, Prometheus for the dashboard's
# test, the desktop app's system libraries and WebDriver tools; then creates the `sankalpa`
# database.
# Idempotent: whatever already answers is left alone, and `apt-get update` runs at most once,
# only when a package is missing. Needs no stdin.
set -euo pipefail

PGHOST_ADDR=127.0.0.1
DB_NAME=${SANKALPA_DB_NAME:-sankalpa}
WAIT_SECONDS=${SANKALPA_SETUP_WAIT_SECONDS:-30}

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  die "not root and no sudo: cannot install or start system services"
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # name port
  local deadline=$((SECONDS + WAIT_SECONDS))
  until listening "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$1 did not start listening on 127.0.0.1:$2 within ${WAIT_SECONDS}s"
    sleep 0.2
  done
  log "$1 is listening on 127.0.0.1:$2"
}

apt_updated=0
install_package() { # Debian package name
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update (for $1)"
    "${SUDO[@]}" apt-get update -qq
    apt_updated=1
  fi
  log "installing $1"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# --- protoc and the well-known types it imports (google/protobuf/*.proto), for crates/proto ---
command -v protoc >/dev/null 2>&1 || install_package protobuf-compiler
[ -f /usr/include/google/protobuf/timestamp.proto ] || install_package libprotobuf-dev

# --- a TrueType font for the charts `make bench-report` draws ---
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || install_package fonts-dejavu-core

# --- cargo-machete, which `make lint` runs to find unused dependencies (built from crates.io) ---
MACHETE_VERSION=0.9.2
if ! cargo machete --version 2>/dev/null | grep -q "$MACHETE_VERSION"; then
  log "installing cargo-machete $MACHETE_VERSION"
  cargo install --quiet --locked cargo-machete --version "$MACHETE_VERSION"
fi

# --- buf, which `make lint` runs on proto/ (scripts/proto-check.sh): the npm package
# @bufbuild/buf pinned in tools/buf/package-lock.json, whose binary comes as a per-platform
# optional dependency from the same registry. Install scripts are skipped: buf's only checks the
# binary or, if the platform package is missing, runs npm install again ---
command -v npm >/dev/null 2>&1 || install_package npm
BUF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/buf"
buf_pinned=$(sed -n 's|.*"@bufbuild/buf": "\(.*\)".*|\1|p' "$BUF_DIR/package.json")
if [ "$("$BUF_DIR/node_modules/.bin/buf" --version 2>/dev/null)" != "$buf_pinned" ]; then
  log "installing buf $buf_pinned into $BUF_DIR/node_modules"
  npm ci --prefix "$BUF_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error
fi

# --- the web console's npm dependencies (clients/web), pinned by its lockfile: installed again
# when node_modules is missing or older than package-lock.json. Vite needs node 20.19 or later;
# playwright-core drives the Chromium installed below, so no browser is downloaded ---
WEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/web"
command -v node >/dev/null 2>&1 || install_package nodejs
node -e 'const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)' ||
  die "node $(node --version) is too old for the web console (clients/web needs 20.19 or later)"
if [ ! -f "$WEB_DIR/node_modules/.package-lock.json" ] ||
  [ "$WEB_DIR/package-lock.json" -nt "$WEB_DIR/node_modules/.package-lock.json" ]; then
  log "installing the web console's dependencies into $WEB_DIR/node_modules"
  npm ci --prefix "$WEB_DIR" --no-audit --no-fund --loglevel=error
fi

# --- the VS Code extension's npm dependencies (clients/vscode), likewise pinned by its lockfile.
# Install scripts are skipped: esbuild's binary comes as a per-platform package from the
# registry (its script only checks it), and vsce's optional keytar would download a prebuilt
# binary from outside the registry, which `vsce package` does not use ---
VSCODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/vscode"
if [ ! -f "$VSCODE_DIR/node_modules/.package-lock.json" ] ||
  [ "$VSCODE_DIR/package-lock.json" -nt "$VSCODE_DIR/node_modules/.package-lock.json" ]; then
  log "installing the VS Code extension's dependencies into $VSCODE_DIR/node_modules"
  npm ci --prefix "$VSCODE_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error
fi

# --- a Python virtualenv for the generated projects' test suites (agent-runner's tests run them
# with its python: pytest, FastAPI, SQLAlchemy, httpx, psycopg, uvicorn); the system Python is
# left as it is ---
PY_VENV=${SANKALPA_PY_VENV:-$HOME/.cache/sankalpa-py}
PY_PACKAGES=(pytest fastapi sqlalchemy httpx "psycopg[binary]" uvicorn)
command -v python3 >/dev/null 2>&1 || install_package python3
if ! "$PY_VENV/bin/python" -c 'import pytest, fastapi, sqlalchemy, httpx, psycopg, uvicorn' >/dev/null 2>&1; then
  if [ ! -x "$PY_VENV/bin/python" ]; then
    python3 -m venv "$PY_VENV" 2>/dev/null || {
      install_package python3-venv
      python3 -m venv "$PY_VENV"
    }
  fi
  log "installing ${PY_PACKAGES[*]} into $PY_VENV"
  "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

# --- what the contract tests drive: Chromium (the /docs page, headless) and a venv with grpcio
# and schemathesis (scripts/contract-venv.sh) ---
command -v chromium >/dev/null 2>&1 || install_package chromium
if command -v python3 >/dev/null 2>&1; then
  "$(dirname "${BASH_SOURCE[0]}")/contract-venv.sh" >/dev/null
fi

# --- Prometheus: the gateway's dashboard test starts its own server (on a free port, with its
# own config and folder) to check the series read with query_range; the package's service is
# not used ---
command -v prometheus >/dev/null 2>&1 || install_package prometheus

# --- the desktop app (clients/desktop, Tauri v2): the system webview and tray libraries it links
# against, what its WebDriver test drives it with (Debian's Xvfb and WebKitWebDriver, and
# tauri-driver from crates.io at a pinned version; xdotool presses its global shortcut; a session
# bus and python3's dbus and gi modules for the stand-in notification daemon), and the check of
# its package's menu entry ---
[ -f /usr/lib/x86_64-linux-gnu/pkgconfig/webkit2gtk-4.1.pc ] || install_package libwebkit2gtk-4.1-dev
[ -f /usr/lib/x86_64-linux-gnu/pkgconfig/ayatana-appindicator3-0.1.pc ] ||
  install_package libayatana-appindicator3-dev
[ -f /usr/lib/x86_64-linux-gnu/pkgconfig/librsvg-2.0.pc ] || install_package librsvg2-dev
command -v WebKitWebDriver >/dev/null 2>&1 || install_package webkit2gtk-driver
command -v Xvfb >/dev/null 2>&1 || install_package xvfb
command -v desktop-file-validate >/dev/null 2>&1 || install_package desktop-file-utils
command -v xdotool >/dev/null 2>&1 || install_package xdotool
command -v dbus-daemon >/dev/null 2>&1 || install_package dbus-daemon
/usr/bin/python3 -c 'import dbus' >/dev/null 2>&1 || install_package python3-dbus
/usr/bin/python3 -c 'import gi' >/dev/null 2>&1 || install_package python3-gi
TAURI_DRIVER_VERSION=2.1.0
if ! cargo install --list | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"; then
  log "installing tauri-driver $TAURI_DRIVER_VERSION"
  cargo install --quiet --locked tauri-driver --version "$TAURI_DRIVER_VERSION"
fi

# --- PostgreSQL ---
pg_installed_here=0
if ! listening 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    install_package postgresql
    pg_installed_here=1
  fi
  pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$pg_installed_here" -eq 1 ]; then
    # A fresh Debian cluster asks for a password over TCP; the local default URL
    # (postgres://postgres@127.0.0.1:5432/sankalpa) expects trust on loopback, as on this kind.
    hba=/etc/postgresql/$pg_version/main/pg_hba.conf
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      log "allowing trust auth on loopback in $hba"
      "${SUDO[@]}" sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
  fi
  # The package's own scripts may have started the cluster already: then it only needs to
  # re-read pg_hba.conf. "Already running" is not an error; the port check below decides.
  if listening 5432; then
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload || true
  else
    log "starting PostgreSQL $pg_version"
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start ||
      log "pg_ctlcluster start exited with $?; waiting for the port anyway"
  fi
fi
wait_for_port PostgreSQL 5432

# --- Redis ---
if ! listening 6379; then
  command -v redis-server >/dev/null 2>&1 || install_package redis-server
  "${SUDO[@]}" mkdir -p /var/lib/redis /var/log/redis
  log "starting Redis"
  listening 6379 || "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for_port Redis 6379

# --- NATS with JetStream ---
if ! listening 4222; then
  [ -x /usr/sbin/nats-server ] || install_package nats-server
  "${SUDO[@]}" mkdir -p /var/lib/nats-server
  log "starting nats-server with JetStream"
  listening 4222 || "${SUDO[@]}" start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for_port NATS 4222

# --- the database ---
psql_admin() { psql -X -w -q -h "$PGHOST_ADDR" -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
exists=$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ||
  die "cannot connect as postgres to $PGHOST_ADDR:5432 (SANKALPA expects trust auth on loopback)"
if [ "$exists" != "1" ]; then
  log "creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE \"$DB_NAME\""
fi
log "ready: postgres://postgres@127.0.0.1:5432/$DB_NAME, redis://127.0.0.1:6379, nats://127.0.0.1:4222"
