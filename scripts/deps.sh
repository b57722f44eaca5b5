#!/usr/bin/env bash
# Install the Debian packages that lungate's build, demo and tests need,
# only those that are missing: nothing is fetched when all are installed.
# Works as root (CI, containers) and through sudo otherwise, on Debian 12
# ("bookworm") and 13 ("trixie"): packages are chosen by what the release
# has, never by a version number written here (clang's runtime, below).
set -euo pipefail

packages=(
	build-essential cmake pkg-config          # toolchain
	libjansson-dev libisal-dev nettle-dev     # libraries lungate links
	libnbd-dev                                # NBD backstores
	librbd-dev librados-dev                   # Ceph RBD backstore (librbd)
	ceph-mon ceph-osd ceph-common             # rbd tests: a throwaway one-node cluster
	libsystemd-dev                            # sd_notify: readiness under systemd
	libmicrohttpd-dev                         # HTTP(S): the web console and /metrics
	python3-prometheus-client curl            # parsing the metrics text in tests
	dnsmasq-base                              # dnsmasq --test of the examples
	jq                                        # reading configs and --json answers in tests
	libiscsi-dev                              # the cow tests' own libiscsi client
	libfuse3-dev fuse3                        # the FUSE view
	nbdkit                                    # NBD test servers
	check                                     # unit tests
	binutils                                  # GNU as for the boot program
	libiscsi-bin                              # iscsi-ls, iscsi-inq, iscsi-test-cu, ...
	keepalived                                # cluster tests: VRRP moves a dead gateway's address
	qemu-utils qemu-block-extra               # qemu-img/qemu-io and their iscsi:// driver
	qemu-system-x86 ipxe-qemu                 # iPXE boot tests
	xorriso mtools fdisk e2fsprogs            # building and inspecting test images
	clang                                     # fuzzing harnesses (libFuzzer), with
	                                          # the libclang-rt-N-dev of its version
	debootstrap                               # the Debian 13 stage of scripts/test and
	                                          # the Debian guest of tests/guest
	chromium chromium-driver python3-selenium # the web console's browser tests
	openssl                                   # the console's HTTPS test certificate
	scdoc man-db                              # the man page lungate(8), built and rendered
	dpkg-dev fakeroot systemd bash-completion # cpack -G DEB (dpkg-shlibdeps), systemd-analyze verify
	file                                      # cpack -G DEB: CPackDeb runs file(1) to find
	                                          # the binaries for dpkg-shlibdeps (minbase
	                                          # Debian 13 has no file: "Problem compressing
	                                          # the directory")
)

# clang_rt: the name of libFuzzer's runtime package for the release's clang
# (libclang-rt-14-dev on Debian 12, libclang-rt-19-dev on Debian 13), from
# clang's dependency on clang-N, installed or in apt's lists; empty if unknown.
clang_rt() {
	local deps
	deps=$(dpkg-query -W -f='${Depends}' clang 2>/dev/null ||
		apt-cache depends clang 2>/dev/null | awk '$1 == "Depends:" { print $2 }' || true)
	if [[ $deps =~ (^|[ ,])clang-([0-9]+)([ ,]|$) ]]; then
		echo "libclang-rt-${BASH_REMATCH[2]}-dev"
	fi
}
rt=$(clang_rt)
[[ -z $rt ]] || packages+=("$rt")

installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "${packages[@]}" 2>/dev/null || true) "
missing=()
for p in "${packages[@]}"; do
	[[ $installed == *" installed:$p "* ]] || missing+=("$p")
done
((${#missing[@]} > 0)) || [[ -z $rt ]] || exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi
# Another apt (an unattended upgrade, a second checkout's deps.sh) may hold
# dpkg's lock: wait for it rather than fail.
apt=(apt-get -o DPkg::Lock::Timeout=600)
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update
if [[ -z $rt ]]; then # apt's lists are fresh now: ask them which clang it is
	rt=$(clang_rt)
	[[ -n $rt ]] || {
		echo "deps.sh: cannot tell which clang this release has (apt-cache depends clang)" >&2
		exit 1
	}
	dpkg-query -W -f='${db:Status-Status}' "$rt" 2>/dev/null | grep -qx installed || missing+=("$rt")
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
