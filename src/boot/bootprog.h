/* bootprog.h - lungate's x86 real-mode boot program and the disk layout it checks.
 *
 * Included by bootprog.S (through the C preprocessor, __ASSEMBLER__ defined)
 * and by C code, so the layout is written down in exactly one place.
 *
 * Layout of a demo disk, in 512-byte sectors ("LBA" below always means a
 * 512-byte LBA counted from the start of the medium, whatever the sector size
 * the BIOS reports; on a 2048-byte CD-ROM, CD sector n holds LBAs 4n..4n+3):
 *
 *   LBA 0              MBR: stage 1 (bytes 0..445), empty partition table,
 *                      0x55 0xAA; stage 1 loads LBA 1.. to 0x7E00.
 *   LBA 1..P-1         the rest of the boot program (P = program sectors,
 *                      at most LUNGATE_BOOT_PROG_MAX_SECTORS; the program's
 *                      last 8 bytes are LUNGATE_BOOT_PROG_SIG).
 *   LBA 32             boot counter: LUNGATE_BOOT_COUNTER_MAGIC (16 bytes,
 *                      NUL-padded), then the count as a 32-bit little-endian
 *                      integer, rest zero. The program increments it on
 *                      every boot from a writable disk.
 *   last 128 LBAs      pattern region (the last 64 KiB of the medium): each
 *                      sector at LBA n holds n as a 64-bit little-endian
 *                      integer, then LUNGATE_BOOT_PATTERN_TAG (8 bytes), then
 *                      bytes 16..511 where byte i = (n + i) mod 256.
 *   everything else    zero (sparse in the image file).
 *
 * The boot program reads the last sector, and the first 32 KiB of the
 * pattern region in one int 13h call; on a 512-byte-sector disk it also reads
 * itself back and updates the counter. An ISO built around the program
 * (El Torito no-emulation) gets the same pattern region appended to its end.
 */
#ifndef LUNGATE_BOOT_BOOTPROG_H
#define LUNGATE_BOOT_BOOTPROG_H

#define LUNGATE_BOOT_SECTOR 512            /* layout unit, bytes */
#define LUNGATE_BOOT_PROG_MAX_SECTORS 32   /* program fits in LBAs 0..31 */
#define LUNGATE_BOOT_COUNTER_LBA 32        /* boot counter sector */
#define LUNGATE_BOOT_COUNTER_MAGIC "LUNGATE-BOOTCNT" /* + NUL = 16 bytes */
#define LUNGATE_BOOT_COUNTER_OFFSET 16     /* byte offset of the count */
#define LUNGATE_BOOT_PATTERN_SECTORS 128   /* pattern region at the end */
#define LUNGATE_BOOT_PATTERN_TAG "LGPATTRN" /* 8 bytes, no NUL on disk */
#define LUNGATE_BOOT_MULTI_BYTES 32768     /* one multi-sector int 13h read */
#define LUNGATE_BOOT_PROG_SIG "LGBOOTS2"   /* last 8 bytes of the program */
#define LUNGATE_BOOT_MIN_DISK (1024 * 1024) /* smallest demo disk, bytes */

/* Values written to port 0xF4 (QEMU isa-debug-exit: status (v << 1) | 1). */
#define LUNGATE_BOOT_EXIT_PORT 0xf4
#define LUNGATE_BOOT_EXIT_OK 0x10          /* QEMU exits with 33 */
#define LUNGATE_BOOT_EXIT_FAIL 0x11        /* QEMU exits with 35 */

#ifndef __ASSEMBLER__
/* The assembled program: a 0x7C00-based flat binary, a multiple of 512 bytes. */
extern const unsigned char lungate_bootprog[];
extern const unsigned int lungate_bootprog_len;
#endif

#endif /* LUNGATE_BOOT_BOOTPROG_H */
