#!/bin/bash
# docker/base-image.sh — makes the base image docker/Dockerfile starts from,
# debian:bookworm-slim, on a machine whose Docker engine cannot pull it (no
# registry reachable): debootstrap (minbase) from the Debian mirror this
# machine's apt uses, with the docs and man pages left out as the official
# slim image does, then `docker import`. Builds inside the image reach the
# same mirror (bookworm, bookworm-updates, bookworm-security). Does nothing
# when the engine has the image already (`docker pull` it where you can).
# Needs root, debootstrap and a running engine. SB_DEBIAN_MIRROR overrides
# the mirror (default: the first …/debian URI in /etc/apt/sources.list*).
set -euo pipefail
name=debian:bookworm-slim
suite=bookworm

if docker image inspect "$name" >/dev/null 2>&1; then
    echo "base-image: $name is there"
    exit 0
fi

# s_apt_uris — every URI of apt's sources, one a line (both file formats).
s_apt_uris () {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }'
}
mirror=${SB_DEBIAN_MIRROR:-$(s_apt_uris | grep -E '/debian/?$' | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security=$(s_apt_uris | grep -E '/debian-security/?$' | head -n 1 || true)
security=${security:-${mirror}-security}
security=${security%/}

command -v debootstrap >/dev/null || { echo "base-image: debootstrap is missing (scripts/deps.sh)" >&2; exit 1; }
root=$(mktemp -d /var/tmp/sb-rootfs.XXXXXX)
chmod 0755 "$root"          # the image's / : mktemp made it 0700
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap --variant=minbase $suite from $mirror (a few minutes)"
# The slim image's dpkg filter, in place before any package is unpacked.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
DPKG
# And its apt and dpkg settings: no fsync per unpacked file (a layer is
# written once), no translations, no package cache left in a layer.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
mkdir -p "$root/etc/apt/apt.conf.d"
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
       "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
tar --numeric-owner -C "$root" -c . |
    docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -m "debootstrap --variant=minbase $suite $mirror" - "$name" >/dev/null
echo "base-image: made $name ($(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1 / 1e6}'))"
