#!/usr/bin/env bash
# Makes the Debian base image our images build on, offline from any image registry: Debian's
# packages into a root filesystem with mmdebstrap, imported into the Docker engine with
# `docker import`. Once per machine: the tarball is cached and the image kept; a second run
# takes a second.
#
#   scripts/base-image.sh            make it if missing; print the image's name on stdout
#
# PHT_DEBIAN_MIRROR (default http://deb.debian.org/debian) and PHT_DEBIAN_SUITE (bookworm)
# choose where from and which release; PHT_IMAGES_DIR (default /var/lib/pht-images) where the
# tarball is cached. The image is `pht-local/debian:<suite>`: the `apt` variant (the essential packages and apt) plus
# ca-certificates, about 90 MB. Production Dockerfiles take it, or an upstream image from a
# mirror, as `--build-arg BASE=…`.
set -euo pipefail
exec 3>&1 1>&2
suite="${PHT_DEBIAN_SUITE:-bookworm}"
mirror="${PHT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
dir="${PHT_IMAGES_DIR:-/var/lib/pht-images}"
image="pht-local/debian:$suite"
packages="ca-certificates"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image" >&3
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "base-image.sh: must run as root (mmdebstrap makes device nodes; it installs packages)"
  exit 1
fi
command -v mmdebstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap
}
mkdir -p "$dir"
chmod 0755 "$dir"
tar="$dir/debian-$suite-apt-$(echo "$packages" | tr ' ' '+').tar"
# A run that died half-way leaves a partial tarball; it is made again.
rm -rf "${tar%.tar}.partial.tar"
if [ ! -f "$tar" ] || [ ! -s "$tar" ]; then
  rm -rf "$tar"
  echo "base-image.sh: mmdebstrap $suite (apt variant, $packages) from $mirror …"
  # The security and updates suites too: an image is as current as the host's packages.
  mmdebstrap --variant=apt --include="$packages" \
    --aptopt='Acquire::Retries "3"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$suite" "${tar%.tar}.partial.tar" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb ${PHT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main"
  mv "${tar%.tar}.partial.tar" "$tar"
fi
docker import --change 'CMD ["/bin/sh"]' "$tar" "$image" >/dev/null
echo "base-image.sh: imported $image ($(du -m "$tar" | cut -f1) MB tarball, cached at $tar)"
echo "$image" >&3
