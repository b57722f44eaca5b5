#!/usr/bin/env bash
# A per-initiator cow LUN whose base is a qcow2 storage object (the gateway's
# own qemu-nbd), with no special case: only the config says so.
#
#  - the base's qemu-nbd runs --read-only (a cow never writes its base);
#  - two initiators (qemu-io --image-opts with initiator-name) write different
#    data to the same LBAs and each reads back its own; their whole disks are
#    the base plus their own writes; a third initiator reads the base;
#  - after the gateway stops (exit 0, no qemu-nbd left) the qcow2 file is
#    unchanged (SHA-256) and still the raw image (qemu-img compare); after a
#    restart each initiator still sees its own writes.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cow-qcow2
RAW=$LG_TMP/base.raw
QCOW=$LG_TMP/base.qcow2
OV=$LG_TMP/overlays
make_random_image "$RAW" 16
run qemu-img convert -f raw -O qcow2 "$RAW" "$QCOW" || fail "qemu-img convert -O qcow2"
base_sha=$(sha "$QCOW")

CFG=$LG_TMP/cow-base.json
write_config "$CFG" "$IQN" "/backstores/cow/c" \
	"$(so_qcow2 gold "$QCOW")" \
	'{"plugin": "cow", "name": "c", "base": "/backstores/qcow2/gold", "overlay_dir": "'"$OV"'", "per_initiator": true}'

ini() { printf '%s:%s' "$LG_IQN_PREFIX" "$1"; }
# qio_as INITIATOR WHAT QEMU-IO-ARGS...: qemu-io on LUN 0 as INITIATOR; must succeed.
qio_as() {
	local who=$1 what=$2 opts
	shift 2
	opts="driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=0,initiator-name=$who"
	QIO_OUT=$(run qemu-io --image-opts "$opts" "$@" 2>&1) || fail "$what: qemu-io as $who failed: $QIO_OUT"
	! grep -Eqi 'verification failed|failed|error' <<<"$QIO_OUT" ||
		fail "$what: qemu-io as $who reported a failure: $QIO_OUT"
}
# disk_is INITIATOR EXPECTED: INITIATOR's whole disk equals the file.
disk_is() {
	local opts="driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$IQN,lun=0,initiator-name=$1"
	rm -f "$LG_TMP/got.raw"
	run qemu-img convert --image-opts "$opts" -O raw "$LG_TMP/got.raw" 2>&1 ||
		fail "qemu-img convert of $1's disk failed"
	same_file "$1's whole disk" "$2" "$LG_TMP/got.raw"
	rm -f "$LG_TMP/got.raw"
}

start_lungate -c "$CFG"
gold=$(child_for "$QCOW") || fail "no qemu-nbd child serves the base $QCOW"
[[ $(cmdline "$gold") == *--read-only* ]] ||
	fail "the base's qemu-nbd runs without --read-only: $(cmdline "$gold")"

PC1=$(ini pc1)
PC2=$(ini pc2)
PC3=$(ini pc3)
LAST=$(((16 << 20) - 128 * 1024))
for who in 1 2; do
	qio_as "$(ini pc$who)" "pc$who's writes" -c "write -P 0x${who}1 512 512" \
		-c "write -P 0x${who}2 1M 64k" -c "write -P 0x${who}3 $LAST 128k" -c flush
done
for who in 1 2; do
	qio_as "$(ini pc$who)" "pc$who reads its own writes" -c "read -P 0x${who}1 512 512" \
		-c "read -P 0x${who}2 1M 64k" -c "read -P 0x${who}3 $LAST 128k"
	cp "$RAW" "$LG_TMP/expect$who.raw"
	patch_raw "$LG_TMP/expect$who.raw" 512 512 0x${who}1 $((1 << 20)) 65536 0x${who}2 \
		"$LAST" 131072 0x${who}3
	disk_is "$(ini pc$who)" "$LG_TMP/expect$who.raw"
done
disk_is "$PC3" "$RAW"
[[ $(sha "$QCOW") == "$base_sha" ]] || fail "the qcow2 base changed while clients wrote"

assert_alive
mapfile -t kids < <(qemu_nbd_children)
stop_lungate
wait_gone 5 "${kids[@]}"
[[ $(sha "$QCOW") == "$base_sha" ]] || fail "the qcow2 base file changed (SHA-256)"
image_equals "the qcow2 base" qcow2 "$QCOW" "$RAW"

start_lungate -c "$CFG"
qio_as "$PC1" "pc1 after a restart" -c 'read -P 0x11 512 512' -c "read -P 0x13 $LAST 128k"
qio_as "$PC2" "pc2 after a restart" -c 'read -P 0x21 512 512' -c 'read -P 0x22 1M 64k'
stop_lungate
[[ $(sha "$QCOW") == "$base_sha" ]] || fail "the qcow2 base file changed after the restart"
log "PASS"
