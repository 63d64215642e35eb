#!/usr/bin/env bash
# Packages the desktop app as a Debian package: scripts/desktop-deb.sh BINARY OUT_DIR [COMPRESSION]
# writes OUT_DIR/sankalpa-desktop_<version>_<arch>.deb and prints its path; COMPRESSION is
# dpkg-deb's (xz by default; the package check uses none, as xz takes minutes on a debug build). The version is the fleet's
# ([workspace.package] in the root Cargo.toml), which clients/desktop/Cargo.toml must carry too.
# dpkg-deb does the packaging, offline: Tauri's bundler is not needed for a .deb, and its
# AppImage needs tools it downloads from GitHub, which this machine cannot reach.
set -euo pipefail

binary=${1:?usage: desktop-deb.sh BINARY OUT_DIR}
out=${2:?usage: desktop-deb.sh BINARY OUT_DIR}
compression=${3:-xz}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
desktop=$root/clients/desktop

# The first `version = "..."` after a section header, as Cargo writes it.
version_in() {
  awk -v section="$2" '
    $0 == section { inside = 1; next }
    /^\[/ { inside = 0 }
    inside && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
  ' "$1"
}
fleet=$(version_in "$root/Cargo.toml" "[workspace.package]")
app=$(version_in "$desktop/Cargo.toml" "[package]")
if [ -z "$fleet" ] || [ "$fleet" != "$app" ]; then
  echo "desktop-deb: clients/desktop/Cargo.toml has version ${app:-none}, the fleet ${fleet:-none}: make them equal" >&2
  exit 1
fi
[ -x "$binary" ] || { echo "desktop-deb: $binary is not an executable" >&2; exit 1; }

arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -Dm755 "$binary" "$stage/usr/bin/sankalpa-desktop"
install -Dm644 "$desktop/icons/32x32.png" "$stage/usr/share/icons/hicolor/32x32/apps/sankalpa-desktop.png"
install -Dm644 "$desktop/icons/icon.png" "$stage/usr/share/icons/hicolor/128x128/apps/sankalpa-desktop.png"
install -d "$stage/usr/share/applications" "$stage/DEBIAN"
# The menu entry, which also registers the sankalpa:// scheme for every user of the machine.
cat > "$stage/usr/share/applications/sankalpa-desktop.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=Sankalpa
Comment=The Sankalpa console, with notifications of your runs
Exec=sankalpa-desktop %u
Icon=sankalpa-desktop
Terminal=false
Categories=Development;
MimeType=x-scheme-handler/sankalpa;
EOF
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: sankalpa-desktop
Version: $fleet
Architecture: $arch
Maintainer: The Sankalpa developers <sankalpa@localhost>
Installed-Size: $size
Depends: libwebkit2gtk-4.1-0, libgtk-3-0, libayatana-appindicator3-1
Section: devel
Priority: optional
Homepage: https://github.com/sankalpa
Description: The Sankalpa console as a native application
 Signs in to a Sankalpa gateway and shows its console, with desktop
 notifications of the runs you start, a tray icon and sankalpa:// links.
EOF
mkdir -p "$out"
deb="$out/sankalpa-desktop_${fleet}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
echo "$deb"
