#!/usr/bin/env bash
# Make the local Debian base image for the nb-evidence CPU image, where no registry answers.
#
#   scripts/make-base-image.sh [TAG]        (default TAG: local/debian:bookworm)
#
# debootstrap --variant=minbase bookworm from this machine's Debian mirror, then
# `tar | docker import`. Idempotent: an existing TAG is kept as it is (remove it to remake).
# Needs root (debootstrap) and a running engine (scripts/start-dockerd.sh).
#
# Environment:
#   DEBIAN_MIRROR      mirror URL (default: the bookworm URI in /etc/apt/sources.list*, else
#                      http://deb.debian.org/debian)
#   NB_BASE_INCLUDE    comma-separated packages to add at debootstrap time (default none), e.g.
#                      for an engine whose build containers cannot reach the mirror: the Dockerfile
#                      skips its apt step when its pinned packages are already installed.
#   DOCKER             docker CLI (default docker)
#
# The image gets the same apt sources as Docker Hub's debian:bookworm-slim (bookworm,
# bookworm-updates, bookworm-security) so that the Dockerfile resolves the same package versions
# on either base, and the same dpkg path excludes (no docs, man pages or locales).
set -euo pipefail

TAG="${1:-local/debian:bookworm}"
DOCKER="${DOCKER:-docker}"
SUITE=bookworm

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    echo "base-image: $TAG exists ($("$DOCKER" image inspect --format '{{.Id}}' "$TAG")); kept"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "base-image: debootstrap needs root (run: sudo $0)" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null; }
fi

find_mirror() {
    # deb822 (.sources): a stanza whose Suites holds "bookworm" and whose URIs is not -security.
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (u != "" && s ~ ("(^| )" suite "( |$)") && u !~ /security/) { print u; exit } u = ""; s = ""; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { $1 = ""; s = $0 }
            END { if (u != "" && s ~ ("(^| )" suite "( |$)") && u !~ /security/) print u }
        ' "$f" | head -n 1)"
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    # one-line format
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite && $2 !~ /security/ { print $2; exit }' "$f")"
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

MIRROR="${DEBIAN_MIRROR:-$(find_mirror)}"
SECURITY_MIRROR="${MIRROR%/debian}/debian-security"

ROOTFS="$(mktemp -d /tmp/nb-base-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

INCLUDE=()
if [ -n "${NB_BASE_INCLUDE:-}" ]; then INCLUDE=(--include="$NB_BASE_INCLUDE"); fi

start=$(date +%s)
echo "base-image: debootstrap --variant=minbase $SUITE from $MIRROR ..."
if ! debootstrap --variant=minbase "${INCLUDE[@]}" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1; then
    echo "base-image: debootstrap failed; last lines of $ROOTFS.log:" >&2
    tail -n 20 "$ROOTFS.log" >&2
    exit 1
fi
rm -f "$ROOTFS.log"

# apt sources as in Docker Hub's debian:bookworm-slim (deb822), pointed at the mirror used here.
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# As in the official slim images: no docs, man pages or translations in later installs.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* 2>/dev/null || true

tar --numeric-owner -C "$ROOTFS" -c . | "$DOCKER" import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    - "$TAG" >/dev/null
echo "base-image: $TAG imported ($("$DOCKER" image inspect --format '{{.Id}} {{.Size}}' "$TAG") bytes) in $(( $(date +%s) - start ))s"
