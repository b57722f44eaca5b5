/* demo.h - the demo disk: a raw image that boots lungate's own boot program.
 *
 * Layout (512-byte LBAs; the constants live in boot/bootprog.h, shared with
 * the boot program src/boot/bootprog.S):
 *
 *   LBA 0            MBR: stage 1 of the boot program, empty partition table,
 *                    0x55 0xAA
 *   LBA 1..P-1       rest of the boot program (P = lungate_bootprog_len / 512,
 *                    at most 32)
 *   LBA 32           boot counter: "LUNGATE-BOOTCNT\0" (16 bytes), then the
 *                    count as a 32-bit little-endian integer (0 when created),
 *                    rest zero
 *   last 128 LBAs    pattern region (last 64 KiB): the sector at LBA n holds
 *                    n as a 64-bit little-endian integer, then "LGPATTRN",
 *                    then bytes i = 16..511 with the value (n + i) & 0xff
 *   the rest         zero, left as a hole in the file
 *
 * Booted through iPXE's sanboot, the program checks the last sector and one
 * 32 KiB read of the pattern region, increments the counter (write + read
 * back), checks drive 0x81 the same way when there is one, and prints
 * "LUNGATE-BOOT OK count=N" on COM1 and screen.
 */
#ifndef LUNGATE_DEMO_H
#define LUNGATE_DEMO_H

#include <stddef.h>
#include <stdint.h>

#define DEMO_DISK_DEFAULT_MIB 16

/* Create a demo disk image of size_bytes at path (never overwrites: O_EXCL).
 * size_bytes must be a multiple of 512 and at least 1 MiB.
 * Returns 0 or -errno (-EINVAL for a bad size, -EEXIST if path exists);
 * on failure no file is left behind. */
int demo_disk_create(const char *path, uint64_t size_bytes);

/* Fill one 512-byte sector with the pattern for 512-byte LBA lba. */
void demo_pattern_sector(unsigned char sector[512], uint64_t lba);

/* Write count pattern sectors to fd, the first at 512-byte LBA first_lba
 * (byte offset first_lba * 512). Returns 0 or -errno. */
int demo_pattern_write(int fd, uint64_t first_lba, uint64_t count);

/* Read the boot counter of the demo disk at path into *count.
 * Returns 0, -EILSEQ if LBA 32 has no counter magic, or -errno. */
int demo_counter_read(const char *path, uint32_t *count);

/* The "demo-disk" subcommand: `lungate demo-disk PATH [SIZE_MIB]`.
 * argv[0] is the subcommand name itself, so call it as
 * cmd_demo_disk(argc - 1, argv + 1) from main(). Prints what it did, or an
 * error naming the path and what to do, and returns the exit status. */
int cmd_demo_disk(int argc, char **argv);

#endif /* LUNGATE_DEMO_H */
