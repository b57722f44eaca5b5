# functions.sh - shared by the boot tests; sourced, not run.
#
# Environment (ctest sets the first two):
#   LUNGATE               the lungate binary under test
#   LUNGATE_BOOT_TOOL     tests/boot's lungate-boot-tool
#   LUNGATE_BOOT_TIMEOUT  seconds one QEMU boot may take (default 240)
#   LUNGATE_KEEP_TMP      if set, keep the temporary directory for inspection
#
# A test gets $tmp (removed on exit), starts the gateway on 127.0.0.1 with a
# free port (start_gateway), boots QEMU + iPXE against it (boot), checks the
# boot program's COM1 lines (expect) and stops the gateway by its pid.

set -u

BOOT_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BOOT_TIMEOUT=${LUNGATE_BOOT_TIMEOUT:-240}
IQN_PREFIX=iqn.2025-10.org.lungate.test
LAYOUT_COUNTER_OFFSET=$((32 * 512))  # boot counter sector (LBA 32)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# A prerequisite that is not installed: skip (77) on a developer's machine,
# fail in CI, which must install everything.
missing() {
    if [ -n "${CI:-}" ]; then
        fail "$* (CI must install it)"
    fi
    echo "SKIP: $*" >&2
    exit 77
}

: "${LUNGATE:?set LUNGATE to the lungate binary (ctest does)}"
: "${LUNGATE_BOOT_TOOL:?set LUNGATE_BOOT_TOOL to lungate-boot-tool (ctest does)}"
[ -x "$LUNGATE" ] || fail "LUNGATE=$LUNGATE is not an executable file"
[ -x "$LUNGATE_BOOT_TOOL" ] || fail "LUNGATE_BOOT_TOOL=$LUNGATE_BOOT_TOOL is not an executable file"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lungate-boot.XXXXXX") || fail "mktemp failed"
gw_pid=
gw_port=
gw_log=$tmp/gateway.log
: >"$gw_log"

cleanup() {
    local rc=$?
    [[ $BASHPID == "$$" ]] || exit "$rc" # a subshell forked with this trap: see integration's lg_cleanup
    if [ -n "$gw_pid" ]; then
        kill -TERM "$gw_pid" 2>/dev/null
        local i
        for i in $(seq 1 50); do
            kill -0 "$gw_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$gw_pid" 2>/dev/null
        wait "$gw_pid" 2>/dev/null
        gw_pid=
    fi
    if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -s "$gw_log" ]; then
        echo "----- gateway log ($gw_log) -----"
        tail -n 200 "$gw_log"
        echo "----- end of gateway log -----"
    fi
    if [ -n "${LUNGATE_KEEP_TMP:-}" ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

require_qemu() {
    command -v qemu-system-x86_64 >/dev/null ||
        missing "qemu-system-x86_64 not found: apt-get install qemu-system-x86 ipxe-qemu"
    [ -r /usr/lib/ipxe/qemu/efi-e1000.rom ] || [ -r /usr/lib/ipxe/qemu/pxe-e1000.rom ] ||
        [ -r /usr/share/qemu/efi-e1000.rom ] || [ -r /usr/share/qemu/pxe-e1000.rom ] ||
        missing "no iPXE ROM for e1000: apt-get install ipxe-qemu"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local i p
    for i in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# start_gateway ARGS...: run `$LUNGATE serve ARGS... --listen 127.0.0.1:PORT`
# in the background on a free port; sets gw_pid and gw_port once the port
# accepts connections.
start_gateway() {
    local attempt rc deadline
    for attempt in 1 2 3 4 5; do
        gw_port=$(free_port) || fail "no free TCP port on 127.0.0.1"
        echo "gateway: $LUNGATE serve $* --listen 127.0.0.1:$gw_port" | tee -a "$gw_log"
        "$LUNGATE" serve "$@" --listen "127.0.0.1:$gw_port" >>"$gw_log" 2>&1 &
        gw_pid=$!
        deadline=$((SECONDS + 30))
        while [ $SECONDS -lt $deadline ]; do
            if ! kill -0 "$gw_pid" 2>/dev/null; then
                wait "$gw_pid"
                rc=$?
                gw_pid=
                break
            fi
            if port_in_use "$gw_port"; then
                echo "gateway: pid $gw_pid listening on 127.0.0.1:$gw_port"
                return 0
            fi
            sleep 0.1
        done
        [ -z "$gw_pid" ] || fail "gateway (pid $gw_pid) not listening on 127.0.0.1:$gw_port after 30 s"
        if tail -n 5 "$gw_log" | grep -qi 'in use'; then
            continue # lost a race for the port: try another
        fi
        fail "gateway exited with status $rc before listening on 127.0.0.1:$gw_port"
    done
    fail "gateway could not get a free port in 5 tries"
}

# stop_gateway: SIGTERM by pid; the gateway must exit 0 within 10 s.
stop_gateway() {
    local i rc
    [ -n "$gw_pid" ] || return 0
    kill -TERM "$gw_pid"
    for i in $(seq 1 100); do
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$gw_pid" 2>/dev/null; then
        kill -KILL "$gw_pid"
        wait "$gw_pid" 2>/dev/null
        gw_pid=
        fail "gateway did not exit within 10 s of SIGTERM (killed)"
    fi
    wait "$gw_pid"
    rc=$?
    gw_pid=
    [ $rc -eq 0 ] || fail "gateway exited with status $rc on SIGTERM (expected 0)"
    echo "gateway: stopped (exit 0)"
}

# iscsi_uri LUN IQN: iPXE's root path for the running gateway, as the guest
# sees it (QEMU user networking maps 10.0.2.2 to the host's 127.0.0.1).
iscsi_uri() {
    local lun=$1
    [ "$lun" = 0 ] && lun=
    echo "iscsi:10.0.2.2::$gw_port:$lun:$2"
}

# boot NAME SCRIPT_TEXT: boot QEMU + iPXE with that iPXE script; the boot
# program's COM1 log is kept in $tmp/NAME.com1.log. Returns ipxe-boot.sh's
# status (0: QEMU exit 33 and LUNGATE-BOOT OK).
boot() {
    local name=$1 script=$2
    mkdir -p "$tmp/tftp"
    printf '%s\n' "$script" >"$tmp/$name.ipxe"
    echo "boot $name: iPXE script:"
    sed 's/^/    /' "$tmp/$name.ipxe"
    bash "$BOOT_TESTS_DIR/ipxe-boot.sh" --log "$tmp/$name.com1.log" \
        "$tmp/tftp" "$tmp/$name.ipxe" "$BOOT_TIMEOUT"
}

# ipxe_script INITIATOR_NAME COMMAND...: an iPXE script that gets an address,
# names the initiator, then runs each COMMAND with `|| reboot` (with QEMU's
# -no-reboot a failed command ends the VM at once).
ipxe_script() {
    local name=$1 cmd
    shift
    printf '#!ipxe\ndhcp || reboot\nset initiator-iqn %s:%s\n' "$IQN_PREFIX" "$name"
    for cmd in "$@"; do
        printf '%s || reboot\n' "$cmd"
    done
}

# example_script FILE IQN: one of examples/*.ipxe, pointed at the running
# gateway (lungate-port, lungate-target); lungate-server defaults to the DHCP
# next-server, which in QEMU's user network is 10.0.2.2, the host.
example_script() {
    local file=$BOOT_TESTS_DIR/../../examples/$1
    [ -r "$file" ] || fail "cannot read $file"
    sed -e "s/^set lungate-port .*/set lungate-port $gw_port/" \
        -e "s/^set lungate-target .*/set lungate-target $2/" "$file"
}

# expect NAME REGEX: the COM1 log of boot NAME has a line matching REGEX (ERE).
expect() {
    grep -Eq -- "$2" "$tmp/$1.com1.log" ||
        fail "boot $1: no COM1 line matching: $2"
}

# counter_of IMAGE: the boot counter stored in a demo disk image, read with
# od (independent of the C code that wrote it).
counter_of() {
    local magic
    magic=$(dd if="$1" bs=1 skip=$LAYOUT_COUNTER_OFFSET count=15 2>/dev/null)
    [ "$magic" = "LUNGATE-BOOTCNT" ] || fail "$1: no LUNGATE-BOOTCNT magic at LBA 32"
    od -An -t u4 -j $((LAYOUT_COUNTER_OFFSET + 16)) -N 4 "$1" | tr -d ' \n'
}

# differs_only_in_counter IMAGE REFERENCE: IMAGE equals REFERENCE (a fresh demo
# disk of the same size) except for the counter's bytes; no stray writes.
differs_only_in_counter() {
    local first=$((LAYOUT_COUNTER_OFFSET + 17)) last=$((LAYOUT_COUNTER_OFFSET + 20)) off
    [ "$(stat -c %s "$1")" = "$(stat -c %s "$2")" ] || fail "$1 changed size"
    while read -r off _; do
        if [ "$off" -lt $first ] || [ "$off" -gt $last ]; then
            fail "$1 differs from a fresh demo disk at byte $((off - 1)), outside the boot counter"
        fi
    done < <(cmp -l "$1" "$2" 2>/dev/null)
}
