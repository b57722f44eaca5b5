#!/usr/bin/env bash
# qemu image formats served by the gateway's own qemu-nbd: a qcow2 made with
# `qemu-img convert -O qcow2` from a raw image (plugin "qcow2"), a copy loaded
# through rtslib's tcmu "user" plugin with config "qcow/PATH", a VDI image
# ("format": "vdi") and a read-only qcow2 ("readonly": true), as LUNs 0-3.
#
#  - `qemu-img convert` of each LUN from iscsi:// gives back the raw image
#    byte for byte (size included);
#  - one qemu-nbd child per image, with -f vdi for the VDI and --read-only
#    for the read-only one;
#  - writes through iSCSI (a sector inside a cluster, a range straddling two
#    64 KiB clusters, 1 MiB, the last sector) read back through a new session,
#    and after the gateway stops each image file holds exactly the raw image
#    with those writes (qemu-img check + qemu-img compare, and qemu-io on the
#    qcow2 file itself);
#  - the read-only LUN reports itself write protected (qemu refuses to open
#    it read-write) and its file does not change;
#  - the gateway exits 0 on SIGTERM and its qemu-nbd children are gone.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:qcow2
RAW=$LG_TMP/disk.raw
make_random_image "$RAW" 16
SIZE=$(file_size "$RAW")
LAST=$((SIZE - 512))

run qemu-img convert -f raw -O qcow2 "$RAW" "$LG_TMP/a.qcow2" || fail "qemu-img convert -O qcow2"
cp "$LG_TMP/a.qcow2" "$LG_TMP/u.qcow2"
run qemu-img convert -f raw -O vdi "$RAW" "$LG_TMP/v.vdi" || fail "qemu-img convert -O vdi"
run qemu-img convert -f raw -O qcow2 "$RAW" "$LG_TMP/r.qcow2" || fail "qemu-img convert -O qcow2"
ro_sha=$(sha "$LG_TMP/r.qcow2")

CFG=$LG_TMP/qcow2.json
write_config "$CFG" "$IQN" \
	"/backstores/qcow2/a /backstores/user/u /backstores/qcow2/v /backstores/qcow2/r" \
	"$(so_qcow2 a "$LG_TMP/a.qcow2")" \
	"$(so_user u "$LG_TMP/u.qcow2" "$SIZE")" \
	"$(so_qcow2 v "$LG_TMP/v.vdi" '"format": "vdi"')" \
	"$(so_qcow2 r "$LG_TMP/r.qcow2" '"readonly": true')"
start_lungate -c "$CFG"

# One qemu-nbd per image, started by the gateway, with the right options.
kids=$(qemu_nbd_children)
[[ $(wc -w <<<"$kids") == 4 ]] ||
	fail "expected 4 qemu-nbd children of the gateway, found: $(for p in $kids; do cmdline "$p"; echo; done)"
for img in a.qcow2 u.qcow2 v.vdi r.qcow2; do
	child_for "$LG_TMP/$img" >/dev/null || fail "no qemu-nbd child serves $img"
done
[[ $(cmdline "$(child_for "$LG_TMP/v.vdi")") == *"-f vdi "* ]] ||
	fail "the VDI's qemu-nbd does not run with -f vdi: $(cmdline "$(child_for "$LG_TMP/v.vdi")")"
[[ $(cmdline "$(child_for "$LG_TMP/u.qcow2")") == *"-f qcow2 "* ]] ||
	fail "the user:qcow object's qemu-nbd does not run with -f qcow2"
[[ $(cmdline "$(child_for "$LG_TMP/r.qcow2")") == *--read-only* ]] ||
	fail "the read-only object's qemu-nbd runs without --read-only: $(cmdline "$(child_for "$LG_TMP/r.qcow2")")"
[[ $(cmdline "$(child_for "$LG_TMP/a.qcow2")") != *--read-only* ]] ||
	fail "the writable qcow2's qemu-nbd runs with --read-only"

# Every LUN reads back as the raw image.
for lun in 0 1 2 3; do
	read_lun "$(lun_url "$lun")" "$LG_TMP/got.raw"
	same_file "LUN $lun read through iSCSI" "$RAW" "$LG_TMP/got.raw"
done
log "all four LUNs read back as the raw image"

# Writes through iSCSI on the writable LUNs.
writes=(512 512 0xa1 65024 1536 0xa2 $((8 << 20)) $((1 << 20)) 0xa3 "$LAST" 512 0xa4)
qio_args=()
for ((i = 0; i < ${#writes[@]}; i += 3)); do
	qio_args+=(-c "write -P ${writes[i + 2]} ${writes[i]} ${writes[i + 1]}")
done
for lun in 0 1 2; do
	qio_ok "writes to LUN $lun" "$(lun_url "$lun")" "${qio_args[@]}" -c flush
done
# ... read back through new sessions.
for lun in 0 1 2; do
	qio_ok "read-back of LUN $lun" "$(lun_url "$lun")" \
		-c 'read -P 0xa1 512 512' -c 'read -P 0xa2 65024 1536' -c 'read -P 0xa3 8M 1M' \
		-c "read -P 0xa4 $LAST 512"
done
cp "$RAW" "$LG_TMP/expect.raw"
patch_raw "$LG_TMP/expect.raw" "${writes[@]}"
read_lun "$(lun_url 0)" "$LG_TMP/got.raw"
same_file "LUN 0 after the writes" "$LG_TMP/expect.raw" "$LG_TMP/got.raw"

# The read-only LUN says it is write protected (MODE SENSE), so qemu will
# not even open it for writing.
out=$(run qemu-io -f raw "$(lun_url 3)" -c 'write -P 0x55 0 4096' 2>&1) || true
grep -qi 'write protected' <<<"$out" ||
	fail "the read-only qcow2 LUN took a write, or failed otherwise: $out"

assert_alive
mapfile -t kids < <(qemu_nbd_children)
stop_lungate
wait_gone 5 "${kids[@]}"

# What landed in the files.
image_equals "qcow2 object a" qcow2 "$LG_TMP/a.qcow2" "$LG_TMP/expect.raw"
image_equals "user (qcow/PATH) object u" qcow2 "$LG_TMP/u.qcow2" "$LG_TMP/expect.raw"
image_equals "VDI object v" vdi "$LG_TMP/v.vdi" "$LG_TMP/expect.raw"
out=$(qemu-io -r -f qcow2 "$LG_TMP/a.qcow2" -c 'read -P 0xa1 512 512' -c 'read -P 0xa2 65024 1536' \
	-c 'read -P 0xa3 8M 1M' -c "read -P 0xa4 $LAST 512" 2>&1) || fail "qemu-io on a.qcow2: $out"
! grep -Eqi 'fail|error' <<<"$out" || fail "qemu-io on a.qcow2 does not see the writes: $out"
[[ $(sha "$LG_TMP/r.qcow2") == "$ro_sha" ]] || fail "the read-only qcow2 file changed"
image_equals "read-only object r" qcow2 "$LG_TMP/r.qcow2" "$RAW"

# A qemu-nbd that cannot use --aio=io_uring (built without it, or a sandbox
# that forbids it) exits at once: the gateway runs it again with
# --aio=threads, and the LUN works.
mkdir -p "$LG_TMP/fakebin"
cat >"$LG_TMP/fakebin/qemu-nbd" <<EOF
#!/bin/bash
for a; do [[ \$a == --aio=io_uring ]] && { echo "qemu-nbd: io_uring refused (test)" >&2; exit 1; }; done
exec $(command -v qemu-nbd) "\$@"
EOF
chmod +x "$LG_TMP/fakebin/qemu-nbd"
write_config "$CFG" "$IQN" "/backstores/qcow2/r" "$(so_qcow2 r "$LG_TMP/r.qcow2" '"readonly": true')"
PATH=$LG_TMP/fakebin:$PATH start_lungate -c "$CFG"
read_lun "$(lun_url 0)" "$LG_TMP/got.raw"
same_file "the read-only LUN with a qemu-nbd without io_uring" "$RAW" "$LG_TMP/got.raw"
[[ $(cmdline "$(child_for "$LG_TMP/r.qcow2")") == *--aio=threads* ]] ||
	fail "the qemu-nbd that refused io_uring does not run with --aio=threads: $(cmdline "$(child_for "$LG_TMP/r.qcow2")")"
grep -q 'exited at start with --aio=io_uring' "$LG_LOG" ||
	fail "the gateway's log does not say why qemu-nbd runs with --aio=threads"
stop_lungate
log "PASS"
