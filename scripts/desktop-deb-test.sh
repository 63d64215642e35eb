#!/usr/bin/env bash
# Checks the desktop app's Debian package, made by scripts/desktop-deb.sh from BINARY: its
# fields (the fleet's version, dependencies that are real packages), its files (the binary as
# built, a menu entry desktop-file-validate accepts, registering the sankalpa:// scheme).
set -euo pipefail

binary=${1:?usage: desktop-deb-test.sh BINARY}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "desktop-deb-test: $*" >&2; exit 1; }

deb=$("$root/scripts/desktop-deb.sh" "$binary" "$work" none)
fleet=$(awk '$0 == "[workspace.package]" { s = 1; next } /^\[/ { s = 0 } s && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.toml")
[ "$(dpkg-deb --field "$deb" Package)" = sankalpa-desktop ] || fail "wrong Package"
[ "$(dpkg-deb --field "$deb" Version)" = "$fleet" ] || fail "Version is not the fleet's $fleet"
[ "$(basename "$deb")" = "sankalpa-desktop_${fleet}_$(dpkg --print-architecture).deb" ] || fail "named $(basename "$deb")"
# Every dependency names a package Debian has: installed here, as make setup installs them.
for package in $(dpkg-deb --field "$deb" Depends | tr -d ' ' | tr ',' ' '); do
  dpkg -s "$package" >/dev/null 2>&1 || fail "Depends names $package, which is not a package installed here"
done

dpkg-deb -x "$deb" "$work/root"
cmp -s "$binary" "$work/root/usr/bin/sankalpa-desktop" || fail "usr/bin/sankalpa-desktop is not the binary given"
[ -x "$work/root/usr/bin/sankalpa-desktop" ] || fail "the binary is not executable"
entry=$work/root/usr/share/applications/sankalpa-desktop.desktop
desktop-file-validate "$entry" || fail "the menu entry is not valid"
grep -qx 'MimeType=x-scheme-handler/sankalpa;' "$entry" || fail "the menu entry does not register sankalpa://"
grep -qx 'Exec=sankalpa-desktop %u' "$entry" || fail "the menu entry does not pass the link"
for size in 32x32 128x128; do
  [ -s "$work/root/usr/share/icons/hicolor/$size/apps/sankalpa-desktop.png" ] || fail "no $size icon"
done
# Files owned by root, whatever built them.
if dpkg-deb --contents "$deb" | awk '{ print $2 }' | grep -qv '^root/root$'; then
  fail "files not owned by root/root"
fi
echo "desktop-deb-test: $(basename "$deb") checked"
