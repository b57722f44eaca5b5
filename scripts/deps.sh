#!/usr/bin/env bash
# Install the Debian 12 packages that lungate's build, demo and tests need,
# only those that are missing: nothing is fetched when all are installed.
# Works as root (CI, containers) and through sudo otherwise.
set -euo pipefail

packages=(
	build-essential cmake pkg-config          # toolchain
	libjansson-dev libisal-dev nettle-dev     # libraries lungate links
	libnbd-dev                                # NBD backstores
	librbd-dev librados-dev                   # Ceph RBD backstore (librbd)
	ceph-mon ceph-osd ceph-common             # rbd tests: a throwaway one-node cluster
	libsystemd-dev                            # sd_notify: readiness under systemd
	python3-prometheus-client curl            # parsing the metrics text in tests
	dnsmasq-base                              # dnsmasq --test of the examples
	libiscsi-dev                              # the cow tests' own libiscsi client
	libfuse3-dev fuse3                        # the FUSE view
	nbdkit                                    # NBD test servers
	check                                     # unit tests
	binutils                                  # GNU as for the boot program
	libiscsi-bin                              # iscsi-ls, iscsi-inq, iscsi-test-cu, ...
	qemu-utils qemu-block-extra               # qemu-img/qemu-io and their iscsi:// driver
	qemu-system-x86 ipxe-qemu                 # iPXE boot tests
	xorriso mtools fdisk e2fsprogs            # building and inspecting test images
	clang libclang-rt-14-dev                  # fuzzing harnesses (libFuzzer)
)

installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "${packages[@]}" 2>/dev/null || true) "
missing=()
for p in "${packages[@]}"; do
	[[ $installed == *" installed:$p "* ]] || missing+=("$p")
done
((${#missing[@]} > 0)) || exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
