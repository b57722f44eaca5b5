#!/usr/bin/env bash
# The Debian package (issue 18): `cpack -G DEB` builds it with Debian
# dependencies from dpkg-shlibdeps; `dpkg -i` installs the binary, lungate(8),
# lungate.service, bash completion, the examples and an empty
# /etc/lungate/lungate.json, and enables nothing; `man -l` renders the page,
# `systemd-analyze verify` accepts the unit, completion completes; the
# installed binary, run as the unit runs it (serve -c /etc/lungate/lungate.json),
# takes objects and serves a LUN to iscsi-ls.  The package is removed (and
# purged) at the end, whatever happens, so the machine is left as it was.
# Needs root (dpkg); CI runs as root.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

((EUID == 0)) || skip "installing a package needs root"
# file: CPackDeb's shlibdeps step runs it on every packaged file
require_cmd cpack dpkg dpkg-deb dpkg-shlibdeps file systemd-analyze man objdump ldd
: "${BUILDDIR:?BUILDDIR must name the build directory (CPackConfig.cmake)}"

# one package test at a time on this machine (two build trees may run the
# suite); a lock directory holding the owner's pid (a lock fd would be
# inherited by the gateways the test starts), taken over from a dead owner
LOCK=/tmp/lungate-deb-test.lock.d
for ((i = 0; ; i++)); do
	if mkdir "$LOCK" 2>/dev/null; then
		echo $$ >"$LOCK/pid"
		break
	fi
	owner=$(cat "$LOCK/pid" 2>/dev/null || true)
	if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then
		rm -rf "$LOCK"
		continue
	fi
	((i < 600)) || fail "another package test (pid $owner) held $LOCK for 5 minutes"
	sleep 0.5
done
if dpkg-query -W -f='${db:Status-Status}' lungate 2>/dev/null | grep -q installed; then
	fail "a lungate package is installed already; this test installs its own and removes it: dpkg -P lungate"
fi
[[ ! -e /etc/lungate/lungate.json ]] || fail "/etc/lungate/lungate.json exists; the test would take it over: move it away"

INSTALLED=
deb_remove() {
	[[ -n $INSTALLED ]] || return 0
	dpkg -r lungate >"$LG_TMP/dpkg-r.log" 2>&1 || log "dpkg -r lungate failed: $(cat "$LG_TMP/dpkg-r.log")"
	dpkg -P lungate >>"$LG_TMP/dpkg-r.log" 2>&1 || log "dpkg -P lungate failed: $(cat "$LG_TMP/dpkg-r.log")"
	INSTALLED=
}
# lg_cleanup (the gateways, the log) after the removal, with the test's status
# (set +e: under errexit, `(exit 1)` would end the trap before lg_cleanup)
trap 'rc=$?; set +e; deb_remove; rm -rf "$LOCK"; (exit $rc); lg_cleanup' EXIT

# ---- build ----
out=$(cd "$LG_TMP" && run cpack --config "$BUILDDIR/CPackConfig.cmake" -G DEB -B "$LG_TMP/pkg" 2>&1) ||
	fail "cpack -G DEB failed: $out"
DEB=$(ls "$LG_TMP"/pkg/lungate_*.deb 2>/dev/null | head -n 1)
[[ -f $DEB ]] || fail "cpack did not make a .deb: $out"
# Depends: the package of every library the binary links directly (whatever this
# Debian release calls it), and the programs lungate runs
info=$(dpkg-deb -f "$DEB" Depends)
deps=(fuse3 qemu-utils)
while read -r lib; do
	pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null ||
		dpkg -S "/usr${lib#/usr}" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null) ||
		fail "no Debian package owns $lib, which lungate links"
	deps+=("${pkg%%:*}")
done < <(ldd "$BUILDDIR/lungate" | awk -v needed=" $(objdump -p "$BUILDDIR/lungate" | awk '$1 == "NEEDED" { printf "%s ", $2 }')" \
	'$2 == "=>" && $3 ~ /^\// && index(needed, " " $1 " ") { print $3 }')
((${#deps[@]} > 5)) || fail "ldd found too few libraries in $BUILDDIR/lungate: ${deps[*]}"
for dep in "${deps[@]}"; do
	grep -Eq "(^|, )$dep( |,|$)" <<<"$info" || fail "the package does not depend on $dep: Depends: $info"
done
dpkg-deb -c "$DEB" | grep -q ' ./etc/' && fail "the package ships files in /etc (postinst creates the config): $(dpkg-deb -c "$DEB" | grep ' ./etc/')"

# ---- install ----
INSTALLED=1
out=$(run dpkg -i "$DEB" 2>&1) || fail "dpkg -i failed: $out"
for f in /usr/bin/lungate /usr/share/man/man8/lungate.8.gz /usr/lib/systemd/system/lungate.service \
	/usr/share/bash-completion/completions/lungate /usr/share/doc/lungate/examples/lungate.json \
	/usr/share/lungate/lungate.json /etc/lungate/lungate.json; do
	[[ -f $f ]] || fail "the package did not install $f"
done
[[ $(stat -c %a /etc/lungate/lungate.json) == 600 ]] || fail "/etc/lungate/lungate.json is not mode 0600"
ls /etc/systemd/system/*.wants/lungate.service >/dev/null 2>&1 && fail "installing the package enabled lungate.service"
grep -q '^ExecStart=/usr/bin/lungate serve -c /etc/lungate/lungate.json$' /usr/lib/systemd/system/lungate.service ||
	fail "the unit does not serve /etc/lungate/lungate.json with /usr/bin/lungate: $(grep Exec /usr/lib/systemd/system/lungate.service)"
grep -q '^Type=notify$' /usr/lib/systemd/system/lungate.service || fail "the unit is not Type=notify"
grep -q '^ExecReload=' /usr/lib/systemd/system/lungate.service || fail "the unit has no ExecReload"

# the man page renders, and says what --help says
page=$(MANWIDTH=120 run man -P cat -l /usr/share/man/man8/lungate.8.gz 2>&1) || fail "man -l failed: $page"
for want in "lungate - userspace iSCSI target" "OBJECT COMMANDS" "/etc/lungate/lungate.json" "saveconfig"; do
	grep -qF -- "$want" <<<"$page" || fail "the installed man page lacks '$want'"
done

# systemd accepts the unit
out=$(run systemd-analyze verify /usr/lib/systemd/system/lungate.service 2>&1) ||
	fail "systemd-analyze verify rejected lungate.service: $out"
grep -i 'lungate.service' <<<"$out" | grep -Eiv 'no such file or directory.*(/run|/sys)' | grep -Ei 'warn|error|unknown|invalid' &&
	fail "systemd-analyze verify complains about lungate.service: $out"

# bash completion
if [[ -f /usr/share/bash-completion/bash_completion ]]; then
	# shellcheck disable=SC2016 # expanded by the inner bash
	comp=$(bash -c 'source /usr/share/bash-completion/bash_completion
		source /usr/share/bash-completion/completions/lungate
		COMP_WORDS=(lungate save); COMP_CWORD=1; COMP_LINE="lungate save"; COMP_POINT=12
		_lungate; echo "${COMPREPLY[*]}"' 2>&1)
	[[ $comp == *saveconfig* ]] || fail "bash completion of 'lungate save' gives: $comp"
else
	fail "bash-completion is not installed: run scripts/deps.sh"
fi

# ---- the installed binary serves what the unit serves ----
make_random_image "$LG_TMP/disk.img" 8
LUNGATE=/usr/bin/lungate start_lungate -c /etc/lungate/lungate.json --control "$SOCK"
LUNGATE=/usr/bin/lungate
lg_ok() {
	OUT=$(run /usr/bin/lungate "$@" 2>&1) || fail "installed lungate $* failed: $OUT"
}
lg_ok /backstores/fileio create disk "$LG_TMP/disk.img"
lg_ok /iscsi create iqn.2025-10.com.example:pkg
lg_ok /iscsi/iqn.2025-10.com.example:pkg/tpg1/luns create /backstores/fileio/disk
lg_ok /iscsi/iqn.2025-10.com.example:pkg/tpg1 set attribute generate_node_acls=1
# completion of target paths asks the running gateway ($LUNGATE_CONTROL)
# shellcheck disable=SC2016 # expanded by the inner bash
comp=$(bash -c 'source /usr/share/bash-completion/bash_completion
	source /usr/share/bash-completion/completions/lungate
	COMP_LINE="lungate /iscsi/iqn.2025-10.com.example:p"; COMP_POINT=${#COMP_LINE}
	COMP_WORDS=(lungate /iscsi/iqn.2025-10.com.example : p); COMP_CWORD=3 # as bash splits it
	_lungate; echo "${COMPREPLY[*]}"' 2>&1)
[[ " $comp " == *" pkg/tpg1/luns "* ]] ||
	fail "bash completion of a target path gives: $comp"
out=$(run iscsi-ls -s "iscsi://127.0.0.1:$PORT" 2>&1) || fail "iscsi-ls against the installed binary failed: $out"
grep -q 'Target:iqn.2025-10.com.example:pkg' <<<"$out" || fail "iscsi-ls does not list the target: $out"
grep -Eq 'Lun:0 +Type:DIRECT_ACCESS \(Size:[78]M\)' <<<"$out" || fail "iscsi-ls does not list the 8 MiB LUN: $out"
stop_lungate

# ---- remove ----
deb_remove
[[ ! -e /usr/bin/lungate && ! -e /usr/lib/systemd/system/lungate.service ]] || fail "dpkg -r left the package's files"
[[ ! -e /etc/lungate/lungate.json ]] || fail "dpkg -P left /etc/lungate/lungate.json"
log "PASS"
