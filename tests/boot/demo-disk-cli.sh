#!/bin/bash
# boot.demo-disk-cli: `lungate demo-disk PATH [SIZE_MIB]` writes the layout
# the boot program expects (program at LBA 0, counter 0 at LBA 32, pattern in
# the last 64 KiB), never overwrites, and rejects bad arguments with a message
# naming the path. No QEMU needed.
. "$(dirname "$0")/functions.sh"

img=$tmp/demo.img
"$LUNGATE_BOOT_TOOL" bootprog "$tmp/bootprog.bin" || fail "cannot write the boot program"
prog_len=$(stat -c %s "$tmp/bootprog.bin")
[ $((prog_len % 512)) = 0 ] && [ "$prog_len" -le $((32 * 512)) ] ||
    fail "boot program is $prog_len bytes: want a multiple of 512, at most 32 sectors"

# Default size, layout.
"$LUNGATE" demo-disk "$img" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "demo-disk $img failed"; }
[ "$(stat -c %s "$img")" = $((16 * 1024 * 1024)) ] || fail "default size is not 16 MiB"
cmp -s -n "$prog_len" "$img" "$tmp/bootprog.bin" || fail "LBA 0.. is not the boot program"
[ "$(od -An -t x1 -j 510 -N 2 "$img" | tr -d ' ')" = 55aa ] || fail "no 0x55AA at the end of LBA 0"
[ "$(counter_of "$img")" = 0 ] || fail "new demo disk's counter is not 0"
last=$((16 * 2048 - 1))
[ "$(od -An -t u8 -j $((last * 512)) -N 8 "$img" | tr -d ' ')" = "$last" ] ||
    fail "last sector does not start with its LBA $last"
[ "$(dd if="$img" bs=1 skip=$((last * 512 + 8)) count=8 2>/dev/null)" = LGPATTRN ] ||
    fail "last sector has no LGPATTRN tag"
[ "$(od -An -t u1 -j $((last * 512 + 100)) -N 1 "$img" | tr -d ' ')" = $(((last + 100) % 256)) ] ||
    fail "last sector's fill byte 100 is wrong"
first=$((16 * 2048 - 128))
[ "$(od -An -t u8 -j $((first * 512)) -N 8 "$img" | tr -d ' ')" = "$first" ] ||
    fail "pattern region does not start at LBA $first"
[ "$(od -An -t u8 -j $(((first - 1) * 512)) -N 8 "$img" | tr -d ' ')" = 0 ] ||
    fail "sector before the pattern region is not zero"
alloc=$(($(stat -c %b "$img") * $(stat -c %B "$img")))
[ "$alloc" -lt $((4 * 1024 * 1024)) ] ||
    echo "note: $img uses $alloc bytes on disk: this file system does not keep it sparse"

# Never overwrites.
cp "$img" "$tmp/copy.img"
if "$LUNGATE" demo-disk "$img" 1 >"$tmp/out" 2>&1; then
    fail "demo-disk overwrote an existing $img"
fi
grep -q "$img" "$tmp/out" || fail "the error for an existing file does not name it: $(cat "$tmp/out")"
cmp -s "$img" "$tmp/copy.img" || fail "demo-disk changed an existing file"

# Explicit size; bad sizes and paths leave nothing behind.
"$LUNGATE" demo-disk "$tmp/small.img" 1 >/dev/null || fail "demo-disk PATH 1 failed"
[ "$(stat -c %s "$tmp/small.img")" = 1048576 ] || fail "SIZE_MIB 1 did not give 1 MiB"
for bad in 0 -1 abc 1.5 ""; do
    if "$LUNGATE" demo-disk "$tmp/bad.img" "$bad" >"$tmp/out" 2>&1; then
        fail "demo-disk accepted size '$bad'"
    fi
    [ ! -e "$tmp/bad.img" ] || fail "demo-disk left $tmp/bad.img behind for size '$bad'"
done
if "$LUNGATE" demo-disk "$tmp/no/such/dir/x.img" >"$tmp/out" 2>&1; then
    fail "demo-disk succeeded in a missing directory"
fi
grep -q "$tmp/no/such/dir/x.img" "$tmp/out" || fail "the error does not name the path: $(cat "$tmp/out")"
if "$LUNGATE" demo-disk >"$tmp/out" 2>&1; then
    fail "demo-disk without a path succeeded"
fi
grep -qi usage "$tmp/out" || fail "demo-disk without a path printed no usage"
echo "PASS: demo-disk layout and argument checks"
