#!/usr/bin/env bash
# An ISO served as a CD-ROM ("device_type": "cd", or `serve --image ISO --cd`):
# iscsi-inq and iscsi-ls see an MMC device (peripheral type 5, removable),
# qemu-img convert (whose iSCSI driver reads type-5 LUNs in 2048-byte blocks)
# reads the ISO back byte for byte, and the MMC commands an OS CD driver sends
# answer as a one-track data disc: READ CAPACITY(10), READ(10) of the ISO9660
# volume descriptor, READ TOC (format 0 as LBA and MSF, formats 1 and 2), GET
# CONFIGURATION (profile CD-ROM current), GET EVENT STATUS NOTIFICATION
# (polled), READ DISC INFORMATION, MODE SENSE page 2Ah. Writes are refused
# as write protected, and a disk LUN beside it stays a disk.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
require_cmd xorriso qemu-img iscsi-inq iscsi-ls cmp od
[[ -x ${RAW_CDB:-} ]] || fail "RAW_CDB (lg-raw-cdb) is not set"

IQN=$LG_IQN_PREFIX:cd
ROOT=$LG_TMP/isoroot
ISO=$LG_TMP/disc.iso
mkdir -p "$ROOT"
head -c $((3 << 20)) /dev/urandom >"$ROOT/data.bin"
echo "lungate CD test" >"$ROOT/README.TXT"
xorriso -as mkisofs -quiet -o "$ISO" -V LUNGATE_CD "$ROOT" || fail "xorriso could not build $ISO"
cp "$ISO" "$LG_TMP/disc.orig"
SIZE=$(file_size "$ISO")
BLOCKS=$((SIZE / 2048))
DISK=$LG_TMP/disk.img
make_random_image "$DISK" 8
CFG=$LG_TMP/cd.json
cat >"$CFG" <<JSON
{
  "storage_objects": [
    { "plugin": "fileio", "name": "disc", "dev": "$ISO", "device_type": "cd" },
    { "plugin": "fileio", "name": "disk", "dev": "$DISK" }
  ],
  "targets": [ {
    "wwn": "$IQN", "fabric": "iscsi",
    "tpgs": [ { "tag": 1, "enable": true,
      "attributes": { "generate_node_acls": 1, "authentication": 0, "demo_mode_write_protect": 0 },
      "luns": [
        { "index": 0, "storage_object": "/backstores/fileio/disc" },
        { "index": 1, "storage_object": "/backstores/fileio/disk" }
      ] } ]
  } ]
}
JSON
start_lungate -c "$CFG"

# cdb LUN CDB-HEX [IN-LENGTH | out:HEX]: sets STATUS and DATA
cdb() {
	local out
	out=$(run "$RAW_CDB" "127.0.0.1:$PORT" "$IQN" "$@") || fail "lg-raw-cdb $* failed: $out"
	STATUS=$(sed -n 's/^status: //p' <<<"$out")
	DATA=$(sed -n 's/^data: //p' <<<"$out")
}
# expect WHAT HEX-PREFIX: the last command was GOOD and its data starts with HEX-PREFIX
expect() {
	[[ $STATUS == GOOD ]] || fail "$1: $STATUS"
	[[ $DATA == "$2"* ]] || fail "$1: got $DATA, want $2..."
	log "$1: ok"
}
hex32() { printf '%08x' "$1"; }

inq=$(run iscsi-inq -i "$LG_INITIATOR" "$(iscsi_url 0)") || fail "iscsi-inq failed: $inq"
grep -qx 'Peripheral Device Type:MMC' <<<"$inq" || fail "iscsi-inq does not see a CD-ROM (MMC): $inq"
grep -qx 'Removable:1' <<<"$inq" || fail "iscsi-inq does not see a removable medium: $inq"
ls=$(run iscsi-ls -i "$LG_INITIATOR" -s "iscsi://127.0.0.1:$PORT") || fail "iscsi-ls failed: $ls"
grep -q '^Lun:0 \+Type:MMC' <<<"$ls" || fail "iscsi-ls does not show LUN 0 as MMC: $ls"
grep -q '^Lun:1 \+Type:DIRECT_ACCESS' <<<"$ls" || fail "the disk LUN 1 is no longer a disk: $ls"

run qemu-img convert -O raw "$(iscsi_url 0)" "$LG_TMP/back.iso" || fail "qemu-img convert of the CD failed"
cmp "$ISO" "$LG_TMP/back.iso" || fail "qemu-img did not read the ISO back byte for byte"
log "qemu-img convert read $SIZE bytes back identical"

cdb 0 25000000000000000000 8
expect "READ CAPACITY(10)" "$(hex32 $((BLOCKS - 1)))00000800"
cdb 0 28000000001000000100 2048 # READ(10) of block 16: the primary volume descriptor
expect "READ(10) of block 16" "01$(printf CD001 | od -An -tx1 | tr -d ' \n')01"
[[ $DATA == "$(od -An -v -tx1 -j 32768 -N 2048 "$ISO" | tr -d ' \n')" ]] || fail "READ(10) of block 16 is not the ISO's"
cdb 0 43000000000000ffff00 65535
expect "READ TOC format 0 (LBA)" "0012010100140100000000000014aa00$(hex32 $BLOCKS)"
f=$((BLOCKS + 150))
cdb 0 43020000000000ffff00 65535
expect "READ TOC format 0 (MSF)" "001201010014010000000200$(printf '0014aa0000%02x%02x%02x' $((f / 4500)) $((f / 75 % 60)) $((f % 75)))"
cdb 0 43000100000000ffff00 65535
expect "READ TOC format 1 (sessions)" "000a01010014010000000000"
cdb 0 43000200000000ffff00 65535
leadout=$(printf '%02x%02x%02x' $((f / 4500)) $((f / 75 % 60)) $((f % 75)))
expect "READ TOC format 2 (raw)" "002e0101011400a000000000010000011400a100000000010000011400a200000000${leadout}0114000100000000000200"
cdb 0 4600000000000000ff00 65535 # GET CONFIGURATION, all features
expect "GET CONFIGURATION" "0000"
[[ ${DATA:12:4} == 0008 ]] || fail "GET CONFIGURATION: current profile ${DATA:12:4}, want 0008 (CD-ROM)"
for f in 0000 0001 0002 0003 0010 001e; do
	grep -q "$f" <<<"${DATA:16}" || fail "GET CONFIGURATION lacks feature $f: $DATA"
done
[[ ${DATA:16:24} == 000003040008010000010b08 ]] || fail "GET CONFIGURATION: the profile list is not CD-ROM (current) then Core: $DATA"
cdb 0 4602000300000000ff00 65535 # RT 2: only the removable medium feature
expect "GET CONFIGURATION RT=2 feature 3" "0000000c000000080003"
cdb 0 4a01000010000000ff00 65535
expect "GET EVENT STATUS NOTIFICATION (polled, media)" "000604100002"
cdb 0 4a00000010000000ff00 65535
[[ $STATUS == "CHECK CONDITION key=0x5 asc=0x24 ascq=0x00" ]] || fail "asynchronous GESN was not refused: $STATUS"
cdb 0 5100000000000000ff00 65535
expect "READ DISC INFORMATION" "00200e0101010100"
cdb 0 5a002a0000000000ff00 65535 # MODE SENSE(10) page 2Ah
expect "MODE SENSE(10) page 2Ah" "001c0000000000002a14"
cdb 0 2a000000001000000100 out:"$(printf '%04096d' 0)"
[[ $STATUS == "CHECK CONDITION key=0x7 asc=0x27 ascq=0x00" ]] || fail "WRITE(10) to the CD was not refused as write protected: $STATUS"
cdb 0 9e100000000000000000002000000000 32
[[ $STATUS == "CHECK CONDITION key=0x5 asc=0x20 ascq=0x00" ]] || fail "READ CAPACITY(16), a disk's command, was not refused on the CD: $STATUS"
cdb 1 9e100000000000000000002000000000 32
expect "READ CAPACITY(16) of the disk LUN 1" "$(printf '%016x' $(((8 << 20) / 512 - 1)))00000200"
cmp "$LG_TMP/disc.orig" "$ISO" || fail "the ISO changed"
assert_alive
stop_lungate

# serve --image ISO --cd
start_lungate --image "$ISO" --cd --iqn "$IQN-flag"
inq=$(run iscsi-inq -i "$LG_INITIATOR" "$(iscsi_url 0 "$IQN-flag")") || fail "iscsi-inq failed: $inq"
grep -qx 'Peripheral Device Type:MMC' <<<"$inq" || fail "serve --cd: iscsi-inq does not see a CD-ROM: $inq"
run qemu-img compare -f raw -F raw "$ISO" "$(iscsi_url 0 "$IQN-flag")" || fail "serve --cd: the CD does not read as the ISO"
stop_lungate

# a device type lungate does not know is refused with the key named
sed -i 's/"device_type": "cd"/"device_type": "tape"/' "$CFG"
if out=$("$LUNGATE" serve -c "$CFG" --listen 127.0.0.1:1 2>&1); then
	fail "lungate accepted \"device_type\": \"tape\""
fi
grep -q 'storage_objects\[0\].device_type' <<<"$out" || fail "the error does not name storage_objects[0].device_type: $out"
log "PASS"
