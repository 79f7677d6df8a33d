#!/usr/bin/env bash
# Builds the managed plugin folder (config.json + rootfs/) from files on this
# machine, pulling no image: the static mynet binary, the iptables tools
# (nft and legacy) with the shared libraries, extension modules and dynamic
# loader they need, and the few directories and /etc files a plugin needs.
#
#   scripts/plugin-rootfs.sh BINARY CONFIG_JSON OUT_DIR
#
# OUT_DIR is replaced. Needs iptables (xtables-nft-multi and
# xtables-legacy-multi) and ldd on the build machine; not root.
set -euo pipefail

bin=$1 config=$2 out=$3
rootfs=$out/rootfs

die() { echo "plugin-rootfs: $*" >&2; exit 1; }

[ -x "$bin" ] || die "no mynet binary at $bin (run make build)"
ldd "$bin" >/dev/null 2>&1 && die "$bin is dynamically linked; build it with CGO_ENABLED=0"

find_tool() {
	local t
	for t in "/usr/sbin/$1" "/sbin/$1" "$(command -v "$1" 2>/dev/null || true)"; do
		[ -n "$t" ] && [ -x "$t" ] && { readlink -f "$t"; return; }
	done
	die "$1 not found: install Debian's iptables package"
}
nft_multi=$(find_tool xtables-nft-multi)
legacy_multi=$(find_tool xtables-legacy-multi)

# The extension modules (-m comment, -j MASQUERADE, ...) are dlopened from
# the directory compiled into libxtables, so ldd does not list them.
xtlib=""
for d in /usr/lib/*/xtables /usr/lib/xtables /lib/*/xtables; do
	[ -e "$d/libxt_comment.so" ] && { xtlib=$d; break; }
done
[ -n "$xtlib" ] || die "iptables extension modules (libxt_*.so) not found"

rm -rf "$out"
mkdir -p "$rootfs"/{usr/sbin,etc,tmp,run/docker/plugins,var/lib/mynet,host/proc/sys/net,proc,sys,dev}
chmod 1777 "$rootfs/tmp"

# copy_path FILE: copies FILE to the same path in the rootfs, following
# symlinks (the loader and libraries are usually links to versioned files).
copy_path() {
	mkdir -p "$rootfs$(dirname "$1")"
	cp -L "$1" "$rootfs$1"
}

# copy_libs FILE...: copies every library ldd resolves for the files, and
# the dynamic loader.
copy_libs() {
	ldd "$@" 2>/dev/null | awk '
		/:$/ { next }    # "FILE:" headers when given several files
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' | sort -u | while read -r lib; do
		copy_path "$lib"
	done
}

install -m 0755 "$bin" "$rootfs/usr/sbin/mynet"
cp -L "$nft_multi" "$rootfs/usr/sbin/xtables-nft-multi"
cp -L "$legacy_multi" "$rootfs/usr/sbin/xtables-legacy-multi"
mkdir -p "$rootfs$xtlib"
cp -L "$xtlib"/*.so "$rootfs$xtlib/"
copy_libs "$nft_multi" "$legacy_multi" "$xtlib"/*.so

# The multi-call binaries pick their personality from argv[0]. Plain
# iptables points at the nft backend as on Debian; mynet itself calls
# iptables-nft or iptables-legacy, whichever the host's Docker uses.
for fam in iptables ip6tables; do
	for suffix in "" -save -restore; do
		ln -s xtables-nft-multi "$rootfs/usr/sbin/$fam-nft$suffix"
		ln -s xtables-legacy-multi "$rootfs/usr/sbin/$fam-legacy$suffix"
		ln -s "$fam-nft$suffix" "$rootfs/usr/sbin/$fam$suffix"
	done
done

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
PASSWD
echo 'root:x:0:' >"$rootfs/etc/group"
[ -r /etc/protocols ] && cp /etc/protocols "$rootfs/etc/protocols"
# network.type host bind-mounts the host's files over these.
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
# The mount point of the host's xtables lock (config.json's xtables-lock).
: >"$rootfs/run/xtables.lock"

cp "$config" "$out/config.json"
echo "plugin folder $out: $(du -sh "$rootfs" | cut -f1) rootfs, iptables $("$nft_multi" iptables --version | awk '{print $2}')"
