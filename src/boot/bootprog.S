/* bootprog.S - lungate's x86 real-mode boot program (GNU as, AT&T syntax).
 *
 * Checks, through int 13h, that a SAN-booted disk (iPXE sanboot/sanhook over
 * iSCSI) reads and writes the right data, and reports every step as a line on
 * COM1 (UART at 0x3F8, programmed directly) and on screen (int 10h teletype).
 * It ends with "LUNGATE-BOOT OK count=N" or "LUNGATE-BOOT FAIL <step>: ...",
 * writes LUNGATE_BOOT_EXIT_OK / _FAIL to port 0xF4 (QEMU isa-debug-exit turns
 * v into exit status (v << 1) | 1: 33 for OK, 35 for FAIL) and, where there is
 * no such device, halts with the message on screen.
 *
 * How it is started:
 *   - as an MBR: the BIOS (or iPXE) loads LBA 0 to 0x7C00 with DL = drive.
 *     Stage 1 (bytes 0..445) loads LBAs 1..PROG_SECTORS-1 to 0x7E00 with
 *     int 13h AH=42h, checks the signature at the program's end, jumps on.
 *   - as an El Torito no-emulation boot image: the whole program is already
 *     at 0x7C00 (segment 0x07C0 or 0, so CS is normalised first), DL = the
 *     CD drive. The int 13h sector size is then 2048 (iPXE presents an ISO
 *     served as a 512-byte-block disk as a 2048-byte CD-ROM), and stage 1
 *     only checks that the signature is there.
 *
 * Disk layout (512-byte LBAs from the start of the medium; see bootprog.h):
 *   LBA 0              MBR: stage 1, empty partition table, 0x55 0xAA
 *   LBA 1..7           the rest of this program (PROG_SECTORS = 8 in all)
 *   LBA 32             boot counter: "LUNGATE-BOOTCNT\0", u32 LE count
 *   last 128 LBAs      pattern region (last 64 KiB): sector n = u64 LE n,
 *                      "LGPATTRN", then bytes i = 16..511 holding (n + i) & 0xff
 * On a medium with larger sectors, native sector s holds LBAs
 * s * (bps / 512) .. s * (bps / 512) + bps / 512 - 1; the checks adapt.
 *
 * Steps, each reported on its own line:
 *   1. int 13h extensions present (AH=41h) on the boot drive
 *   2. drive parameters (AH=48h): sector count, bytes per sector
 *   3. 512-byte disk: read the program back from LBA 0 and compare it with
 *      memory; 2048-byte CD: read CD sector 16 and check "CD001" (a BIOS's
 *      own CD-ROM may report the size as unknown, all ones: the medium is
 *      then the ISO9660 volume, whose size the PVD gives, plus the pattern
 *      region appended to it)
 *   4. read the last sector, check the pattern
 *   5. read the first 32 KiB of the pattern region in one int 13h call into
 *      a buffer at 0x10000 (above the code), check the pattern
 *   6. boot counter: read, increment, write (AH=43h), read back, compare,
 *      print "BOOT COUNT n"; skipped on a 2048-byte (CD-ROM) medium
 *   7. drive 0x81, if int 13h AH=41h/48h answer for it: steps 4 and 5 there
 *
 * Memory: variables at 0x0600..0x06FF, stack below 0x7C00, program at
 * 0x7C00..0x8BFF, data buffers at 0x10000..0x20FFF: clear of the code, and
 * of what iPXE's El Torito loader reads (it takes boot-load-size as a count
 * of 2048-byte sectors, so 8 gives 16 KiB, up to 0xBBFF).
 */
#include "bootprog.h"

	.code16
	.text
	.globl	start

	.set	PROG_SECTORS, 8		/* program size in 512-byte sectors */
	.set	COM1, 0x3f8

	/* Variables (absolute, below the program; not part of the image). */
	.set	var_boot_drive, 0x0600	/* byte: DL at entry */
	.set	var_io_drive, 0x0601	/* byte: drive the I/O helpers use */
	.set	var_shift, 0x0602	/* byte: log2(bytes per sector / 512) */
	.set	var_status, 0x0603	/* byte: AH of the last int 13h call */
	.set	var_bps, 0x0604		/* word: bytes per sector */
	.set	var_fail_kind, 0x0606	/* byte: 0 int 13h error, 1 pattern */
	.set	var_sectors, 0x0608	/* qword: sectors (AH=48h) */
	.set	var_lba, 0x0610		/* qword: native LBA of the last I/O */
	.set	var_bad_lba, 0x0618	/* qword: expected LBA at a mismatch */
	.set	var_bad_found, 0x0620	/* qword: first 8 bytes found there */
	.set	var_count, 0x0628	/* dword: boot count after increment */
	.set	var_ext_api, 0x062c	/* word: AH=41h CX */
	.set	var_ext_ver, 0x062e	/* byte: AH=41h AH */
	.set	var_bps_boot, 0x0630	/* word: bytes per sector, boot drive */
	.set	var_bad_off, 0x0632	/* word: byte offset of a mismatch */
	.set	dap, 0x0640		/* 16 bytes: int 13h disk address packet */
	.set	params, 0x0650		/* 0x42 bytes: AH=48h result buffer */

	/* Data buffers (segment:0000), all above 0x10000. */
	.set	BUF_BIG_SEG, 0x1000	/* 32 KiB multi-sector read */
	.set	BUF_SEC_SEG, 0x1800	/* one sector (up to 4 KiB) */
	.set	BUF_CHK_SEG, 0x1900	/* one sector, read-back check */
	.set	BUF_PROG_SEG, 0x2000	/* program read-back (4 KiB) */

/* ------------------------------------------------------------------ */
/* Stage 1: the first 446 bytes, all that an MBR boot gets loaded.     */
/* ------------------------------------------------------------------ */
start:
	ljmp	$0, $stage1		/* CS:IP = 0000:7Cxx whatever we got */
stage1:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti
	cld
	movb	%dl, var_boot_drive
	movb	%dl, var_io_drive
	call	serial_init

	/* 512-byte sectors: loaded as an MBR, fetch the rest. Otherwise
	 * (El Torito) the whole image must be here already. */
	call	get_params
	jc	1f
	cmpw	$512, params+24
	jne	2f
1:	movl	$1, %eax
	xorl	%edx, %edx
	movw	$(PROG_SECTORS - 1), %cx
	movw	$0x07e0, %bx
	call	disk_read
	jc	s1_fail_load
2:	movw	$s1_sig, %si
	movw	$prog_sig, %di
	movw	$8, %cx
	repe cmpsb
	jne	s1_fail_sig
	jmp	stage2

s1_fail_load:
	movw	$msg_s1_load, %si
	jmp	fail_int13
s1_fail_sig:
	movw	$msg_s1_sig, %si
	jmp	fail_plain

/* Program COM1: 115200 8N1, FIFO on, interrupts off. */
serial_init:
	movw	$uart_init, %si
1:	lodsw				/* AL = register offset, AH = value */
	movw	$COM1, %dx
	addb	%al, %dl
	movb	%ah, %al
	outb	%al, %dx
	cmpw	$uart_init_end, %si
	jb	1b
	ret
uart_init:	/* (register offset, value) pairs */
	.byte	1, 0x00			/* IER: no interrupts */
	.byte	3, 0x80			/* LCR: DLAB */
	.byte	0, 0x01			/* divisor low: 115200 baud */
	.byte	1, 0x00			/* divisor high */
	.byte	3, 0x03			/* LCR: 8N1 */
	.byte	2, 0x07			/* FCR: enable and clear FIFOs */
	.byte	4, 0x03			/* MCR: DTR, RTS */
uart_init_end:

/* Print AL on COM1 and screen; preserves all registers. */
putc:
	pushal
	movb	%al, %bl
	movw	$COM1 + 5, %dx
	movw	$0xffff, %cx		/* bounded wait: no UART, no hang */
1:	inb	%dx, %al
	testb	$0x20, %al		/* LSR.THRE */
	loopz	1b
	movw	$COM1, %dx
	movb	%bl, %al
	outb	%al, %dx
	movb	$0x0e, %ah		/* int 10h teletype */
	xorw	%bx, %bx		/* page 0 */
	int	$0x10
	popal
	ret

/* Print the NUL-terminated string at DS:SI; preserves all registers. */
puts:
	pushw	%si
	pushw	%ax
1:	lodsb
	testb	%al, %al
	jz	2f
	call	putc
	jmp	1b
2:	popw	%ax
	popw	%si
	ret

/* Print AL as two hex digits. */
put_hex8:
	pushw	%ax
	shrb	$4, %al
	call	put_nibble
	popw	%ax
	pushw	%ax
	andb	$0x0f, %al
	call	put_nibble
	popw	%ax
	ret
put_nibble:
	addb	$0x30, %al		/* '0' */
	cmpb	$0x39, %al
	jbe	putc
	addb	$7, %al			/* 'A'.. */
	jmp	putc

/* AH=48h on var_io_drive into params; CF set on failure. */
get_params:
	movw	$0x1e, params		/* buffer size: EDD 2.x table */
	movb	$0x48, %ah
	movb	var_io_drive, %dl
	movw	$params, %si
	int	$0x13
	movb	%ah, var_status
	ret

/* int 13h extended read (AH=42h) or write (AH=43h) on var_io_drive:
 * EDX:EAX = native LBA, CX = sectors, BX = buffer segment (offset 0).
 * CF set and var_status = AH on failure. Clobbers AX, DX, SI, BP. */
disk_read:
	movw	$0x4200, %bp
	jmp	disk_xfer
disk_write:
	movw	$0x4300, %bp		/* AL = 0: write without verify */
disk_xfer:
	movw	$0x0010, dap		/* packet size, reserved */
	movw	%cx, dap + 2
	movw	$0, dap + 4
	movw	%bx, dap + 6
	movl	%eax, dap + 8
	movl	%edx, dap + 12
	movw	%bp, %ax
	movb	var_io_drive, %dl
	movw	$dap, %si
	int	$0x13
	movb	%ah, var_status
	ret

/* Failure exits. SI = "<step>: what" text. */
fail_int13:				/* ... + " (int 13h status 0xXX)" */
	call	fail_prefix
	movw	$msg_status, %si
	call	puts
	movb	var_status, %al
	call	put_hex8
	movb	$0x29, %al		/* ')' */
	call	putc
	jmp	fail_exit
fail_plain:
	call	fail_prefix
fail_exit:
	call	newline
	movb	$LUNGATE_BOOT_EXIT_FAIL, %al
	jmp	finish
fail_prefix:				/* "LUNGATE-BOOT FAIL " + SI */
	pushw	%si
	movw	$msg_fail, %si
	call	puts
	popw	%si
	jmp	puts

newline:				/* clobbers SI */
	movw	$msg_nl, %si
	jmp	puts

/* Let COM1 drain, tell QEMU the result (AL), then halt for good. */
finish:
	movb	%al, %bl
	movw	$COM1 + 5, %dx
	movw	$0xffff, %cx
1:	inb	%dx, %al
	testb	$0x40, %al		/* LSR.TEMT */
	loopz	1b
	movb	%bl, %al
	outb	%al, $LUNGATE_BOOT_EXIT_PORT
2:	cli
	hlt
	jmp	2b

s1_sig:		.ascii	LUNGATE_BOOT_PROG_SIG
msg_fail:	.asciz	"LUNGATE-BOOT FAIL "
msg_status:	.asciz	" (int 13h status 0x"
msg_nl:		.asciz	"\r\n"
msg_s1_load:	.asciz	"stage1: reading LBA 1..7"
msg_s1_sig:	.asciz	"stage1: program incomplete"

	.org	446			/* fails if stage 1 outgrew 446 bytes */
	.fill	64, 1, 0		/* empty partition table */
	.byte	0x55, 0xaa

/* ------------------------------------------------------------------ */
/* Stage 2: LBA 1 onwards, at 0x7E00.                                  */
/* ------------------------------------------------------------------ */
stage2:
	movw	$msg_hello, %si
	call	puts
	movb	var_boot_drive, %al
	call	put_hex8
	call	newline

	/* 1. int 13h extensions */
	movb	var_boot_drive, %al
	movb	%al, var_io_drive
	call	check_ext
	jnc	1f
	movw	$msg_f_ext, %si
	jmp	fail_int13
1:	movw	$msg_ext, %si
	call	puts
	movb	var_ext_ver, %al
	call	put_hex8
	movw	$msg_api, %si
	call	puts
	movw	var_ext_api, %ax
	xchgb	%al, %ah
	call	put_hex8
	xchgb	%al, %ah
	call	put_hex8
	call	newline

	/* 2. drive parameters */
	call	get_params
	jnc	1f
	movw	$msg_f_params, %si
	jmp	fail_int13
1:	call	parse_params
	jnc	1f
	movw	$msg_f_params_bad, %si
	call	fail_prefix
	call	print_geometry
	jmp	fail_exit
1:	movw	$msg_params, %si
	call	puts
	call	print_geometry
	call	newline

	/* 3. read the program back (512-byte disk) or the ISO9660 volume
	 *    descriptor (2048-byte CD-ROM) */
	cmpw	$512, var_bps
	jne	3f
	xorl	%eax, %eax
	xorl	%edx, %edx
	movw	$PROG_SECTORS, %cx
	movw	$BUF_PROG_SEG, %bx
	call	disk_read
	jnc	1f
	movw	$msg_f_readback, %si
	jmp	fail_int13
1:	movw	$BUF_PROG_SEG, %ax
	movw	%ax, %es
	xorw	%di, %di
	movw	$0x7c00, %si
	movw	$(PROG_SECTORS * 512), %cx
	repe cmpsb
	pushw	%ds
	popw	%es
	je	2f
	movw	$msg_f_readback_cmp, %si
	jmp	fail_plain
2:	movw	$msg_readback, %si
	call	puts
	call	newline
	jmp	4f
3:	cmpw	$2048, var_bps
	jne	4f
	movl	$16, %eax
	xorl	%edx, %edx
	movw	$1, %cx
	movw	$BUF_SEC_SEG, %bx
	call	disk_read
	jnc	1f
	movw	$msg_f_iso, %si
	jmp	fail_int13
1:	movw	$BUF_SEC_SEG, %ax
	movw	%ax, %es
	cmpb	$1, %es:0		/* type: primary volume descriptor */
	jne	2f
	cmpl	$0x30304443, %es:1	/* "CD00" */
	jne	2f
	cmpb	$0x31, %es:5		/* "1" */
2:	pushw	%ds
	popw	%es
	je	1f
	movw	$msg_f_iso_cmp, %si
	jmp	fail_plain
1:	movw	$msg_iso, %si
	call	puts
	call	newline
	/* A BIOS's own CD-ROM may not know the size (all ones): the pattern
	 * region follows the ISO9660 volume, whose size the PVD gives. */
	cmpl	$0xffffffff, var_sectors + 4
	jne	4f
	movw	$BUF_SEC_SEG, %ax
	movw	%ax, %es
	movl	%es:80, %eax		/* volume space size, CD sectors */
	pushw	%ds
	popw	%es
	addl	$(LUNGATE_BOOT_PATTERN_SECTORS / 4), %eax
	movl	%eax, var_sectors
	movl	$0, var_sectors + 4
	movw	$msg_iso_size, %si
	call	puts
	xorl	%edx, %edx
	call	put_dec64
	call	newline
4:
	/* 4. last sector */
	call	check_last
	jnc	1f
	movw	$msg_f_last, %si
	jmp	fail_check
1:	movw	$msg_last, %si
	call	puts
	call	print_lba
	call	newline

	/* 5. one multi-sector read of 32 KiB */
	call	check_multi
	jnc	1f
	movw	$msg_f_multi, %si
	jmp	fail_check
1:	movw	$msg_multi, %si
	call	puts
	call	print_lba
	movw	$msg_multi_n, %si
	call	puts
	movzwl	dap + 2, %eax
	call	put_dec32
	movw	$msg_multi_b, %si
	call	puts
	call	newline

	/* 6. boot counter */
	cmpw	$2048, var_bps
	jne	1f
	movw	$msg_count_skip, %si
	call	puts
	call	newline
	jmp	counter_done
1:	call	counter_native_lba
	movw	$BUF_SEC_SEG, %bx
	call	disk_read
	jnc	1f
	movw	$msg_f_cread, %si
	jmp	fail_int13
1:	movw	$BUF_SEC_SEG, %ax
	movw	%ax, %es
	xorw	%di, %di
	movw	$counter_magic, %si
	movw	$16, %cx
	repe cmpsb
	je	1f
	pushw	%ds
	popw	%es
	movw	$msg_f_cmagic, %si
	jmp	fail_plain
1:	movl	%es:LUNGATE_BOOT_COUNTER_OFFSET, %eax
	movl	%eax, var_count
	incl	%eax
	movl	%eax, %es:LUNGATE_BOOT_COUNTER_OFFSET
	pushw	%ds
	popw	%es
	movw	$msg_cread, %si
	call	puts
	movl	var_count, %eax
	call	put_dec32
	call	newline
	incl	var_count

	call	counter_native_lba
	movw	$BUF_SEC_SEG, %bx
	call	disk_write
	jnc	1f
	movw	$msg_f_cwrite, %si
	jmp	fail_int13
1:	movw	$msg_cwrite, %si
	call	puts
	movl	var_count, %eax
	call	put_dec32
	call	newline

	call	counter_native_lba
	movw	$BUF_CHK_SEG, %bx
	call	disk_read
	jnc	1f
	movw	$msg_f_cverify, %si
	jmp	fail_int13
1:	movw	$BUF_CHK_SEG, %ax
	movw	%ax, %es
	xorw	%di, %di
	movw	$counter_magic, %si
	movw	$16, %cx
	repe cmpsb
	je	1f
	pushw	%ds
	popw	%es
	movw	$msg_f_cverify_magic, %si
	jmp	fail_plain
1:	movl	%es:LUNGATE_BOOT_COUNTER_OFFSET, %eax
	pushw	%ds
	popw	%es
	cmpl	var_count, %eax
	je	1f
	movw	$msg_f_cverify_cmp, %si
	call	fail_prefix
	call	put_dec32
	movw	$msg_wrote, %si
	call	puts
	movl	var_count, %eax
	call	put_dec32
	jmp	fail_exit
1:	movw	$msg_cverify, %si
	call	puts
	movl	var_count, %eax
	call	put_dec32
	call	newline
	movw	$msg_bootcount, %si
	call	puts
	movl	var_count, %eax
	call	put_dec32
	call	newline
counter_done:

	/* 7. a second drive, 0x81 */
	cmpb	$0x81, var_boot_drive
	jne	1f
	movw	$msg_d81_self, %si
	call	puts
	call	newline
	jmp	d81_done
1:	movb	$0x81, var_io_drive
	call	check_ext
	jnc	1f
	movw	$msg_d81_none, %si
	call	puts
	call	newline
	jmp	d81_done
1:	call	get_params
	jnc	1f
	movw	$msg_f_d81_params, %si
	jmp	fail_int13
1:	call	parse_params
	jnc	1f
	movw	$msg_f_d81_params_bad, %si
	call	fail_prefix
	call	print_geometry
	jmp	fail_exit
1:	call	check_last
	jnc	1f
	movw	$msg_f_d81_last, %si
	jmp	fail_check
1:	call	check_multi
	jnc	1f
	movw	$msg_f_d81_multi, %si
	jmp	fail_check
1:	movw	$msg_d81, %si
	call	puts
	call	print_geometry
	movw	$msg_d81_ok, %si
	call	puts
	call	newline
d81_done:

	/* Done. */
	movw	$msg_ok, %si
	call	puts
	cmpw	$2048, var_bps_boot
	jne	1f
	movw	$msg_none, %si
	call	puts
	jmp	2f
1:	movl	var_count, %eax
	call	put_dec32
2:	call	newline
	movb	$LUNGATE_BOOT_EXIT_OK, %al
	jmp	finish

/* Fail after check_last/check_multi: SI = step text. */
fail_check:
	cmpb	$0, var_fail_kind
	je	fail_int13
	call	fail_prefix
	movw	$msg_mismatch, %si
	call	puts
	movl	var_bad_lba, %eax
	movl	var_bad_lba + 4, %edx
	call	put_dec64
	movw	$msg_at_byte, %si
	call	puts
	movzwl	var_bad_off, %eax
	call	put_dec32
	movw	$msg_found, %si
	call	puts
	movl	var_bad_found + 4, %eax
	call	put_hex32
	movl	var_bad_found, %eax
	call	put_hex32
	jmp	fail_exit

/* AH=41h on var_io_drive. CF set if the extensions are missing; else
 * var_ext_ver / var_ext_api hold AH / CX. */
check_ext:
	movb	$0x41, %ah
	movw	$0x55aa, %bx
	movb	var_io_drive, %dl
	int	$0x13
	movb	%ah, var_status
	jc	1f
	cmpw	$0xaa55, %bx
	jne	2f
	testb	$1, %cl			/* fixed disk access: AH=42h..48h */
	jz	2f
	movb	%ah, var_ext_ver
	movw	%cx, var_ext_api
	clc
	ret
2:	stc
1:	ret

/* Take bytes per sector and sector count from params. CF set if the sector
 * size is not 512, 1024, 2048 or 4096, or the medium is smaller than the
 * layout (256 LBAs). */
parse_params:
	movw	params + 24, %ax
	movw	%ax, var_bps
	movl	params + 16, %eax
	movl	%eax, var_sectors
	movl	params + 20, %eax
	movl	%eax, var_sectors + 4
	movb	var_io_drive, %al
	cmpb	var_boot_drive, %al
	jne	1f
	movw	var_bps, %ax
	movw	%ax, var_bps_boot
1:	movw	var_bps, %ax
	xorb	%cl, %cl
	movw	$512, %dx
2:	cmpw	%dx, %ax
	je	3f
	shlw	$1, %dx
	incb	%cl
	cmpb	$4, %cl
	jb	2b
	stc
	ret
3:	movb	%cl, var_shift
	cmpl	$0, var_sectors + 4
	jne	4f			/* big, or all ones: size unknown */
	movl	var_sectors, %eax
	shll	%cl, %eax
	jc	4f
	cmpl	$256, %eax
	jae	4f
	stc
	ret
4:	clc
	ret

/* " sectors=N bytes-per-sector=B" */
print_geometry:
	pushw	%si
	movw	$msg_sectors, %si
	call	puts
	movl	var_sectors, %eax
	movl	var_sectors + 4, %edx
	call	put_dec64
	movw	$msg_bps, %si
	call	puts
	movzwl	var_bps, %eax
	call	put_dec32
	popw	%si
	ret

/* " lba=N" with the native LBA of the last check. */
print_lba:
	movw	$msg_lba, %si
	call	puts
	movl	var_lba, %eax
	movl	var_lba + 4, %edx
	jmp	put_dec64

/* EDX:EAX = native LBA of the counter sector, CX = 1. */
counter_native_lba:
	movl	$LUNGATE_BOOT_COUNTER_LBA, %eax
	movb	var_shift, %cl
	shrl	%cl, %eax
	xorl	%edx, %edx
	movw	$1, %cx
	ret

/* Read the last native sector of var_io_drive and check its pattern.
 * CF set on failure (var_fail_kind says which). */
check_last:
	movl	var_sectors, %eax
	movl	var_sectors + 4, %edx
	subl	$1, %eax
	sbbl	$0, %edx
	movw	$1, %cx
	movw	$BUF_SEC_SEG, %bx
	jmp	check_region

/* Read the first 32 KiB of the pattern region in one call and check it. */
check_multi:
	movb	var_shift, %cl
	movl	$LUNGATE_BOOT_PATTERN_SECTORS, %ebx
	shrl	%cl, %ebx
	movl	var_sectors, %eax
	movl	var_sectors + 4, %edx
	subl	%ebx, %eax
	sbbl	$0, %edx
	movw	$(LUNGATE_BOOT_MULTI_BYTES / 512), %bx
	shrw	%cl, %bx
	movw	%bx, %cx
	movw	$BUF_BIG_SEG, %bx
	/* fall through */

/* Read CX native sectors from EDX:EAX into BX:0000, check the pattern. */
check_region:
	movl	%eax, var_lba
	movl	%edx, var_lba + 4
	pushw	%cx
	pushw	%bx
	call	disk_read
	popw	%bx
	popw	%si
	jnc	1f
	movb	$0, var_fail_kind
	ret
1:	movb	var_shift, %cl
	shlw	%cl, %si		/* 512-byte pieces to check */
	movl	var_lba, %eax
	movl	var_lba + 4, %edx
	shldl	%cl, %eax, %edx		/* native LBA -> 512-byte LBA */
	shll	%cl, %eax
	movw	%bx, %es
	xorw	%di, %di
	call	verify_pattern
	pushw	%ds
	popw	%es
	ret

/* Check SI 512-byte pattern sectors at ES:DI, the first being LBA
 * EDX:EAX. CF set on a mismatch, with var_bad_lba / var_bad_found. */
verify_pattern:
1:	xorw	%bx, %bx
	cmpl	%eax, %es:(%di)
	jne	9f
	movb	$4, %bl
	cmpl	%edx, %es:4(%di)
	jne	9f
	movb	$8, %bl
2:	movb	pattern_tag - 8(%bx), %cl
	cmpb	%cl, %es:(%bx,%di)
	jne	9f
	incw	%bx
	cmpw	$16, %bx
	jb	2b
3:	movb	%bl, %cl
	addb	%al, %cl
	cmpb	%cl, %es:(%bx,%di)
	jne	9f
	incw	%bx
	cmpw	$512, %bx
	jb	3b
	addw	$512, %di
	addl	$1, %eax
	adcl	$0, %edx
	decw	%si
	jnz	1b
	clc
	ret
9:	movw	%bx, var_bad_off
	movl	%eax, var_bad_lba
	movl	%edx, var_bad_lba + 4
	movl	%es:(%di), %eax
	movl	%eax, var_bad_found
	movl	%es:4(%di), %eax
	movl	%eax, var_bad_found + 4
	movb	$1, var_fail_kind
	stc
	ret

/* Print EAX as eight hex digits; preserves all registers. */
put_hex32:
	pushl	%eax
	rorl	$16, %eax
	xchgb	%al, %ah
	call	put_hex8
	xchgb	%al, %ah
	call	put_hex8
	rorl	$16, %eax
	xchgb	%al, %ah
	call	put_hex8
	xchgb	%al, %ah
	call	put_hex8
	popl	%eax
	ret

/* Print EAX in decimal. */
put_dec32:
	pushl	%edx
	xorl	%edx, %edx
	call	put_dec64
	popl	%edx
	ret

/* Print EDX:EAX in decimal; preserves all registers. */
put_dec64:
	pushal
	movl	$10, %ebx
	xorw	%cx, %cx
1:	movl	%eax, %esi		/* low half */
	movl	%edx, %eax
	xorl	%edx, %edx
	divl	%ebx			/* high / 10 */
	movl	%eax, %edi
	movl	%esi, %eax
	divl	%ebx			/* (rem:low) / 10 */
	pushw	%dx
	incw	%cx
	movl	%edi, %edx
	movl	%eax, %esi
	orl	%edx, %esi
	jnz	1b
2:	popw	%ax
	addb	$0x30, %al
	call	putc
	loop	2b
	popal
	ret

counter_magic:	.ascii	LUNGATE_BOOT_COUNTER_MAGIC
		.byte	0
pattern_tag:	.ascii	LUNGATE_BOOT_PATTERN_TAG

msg_hello:	.asciz	"lungate boot program: boot drive 0x"
msg_ext:	.asciz	"int13 extensions (AH=41h): OK version=0x"
msg_api:	.asciz	" api=0x"
msg_params:	.asciz	"drive parameters (AH=48h): OK"
msg_sectors:	.asciz	" sectors="
msg_bps:	.asciz	" bytes-per-sector="
msg_readback:	.asciz	"program read-back (LBA 0..7): OK matches memory"
msg_iso:	.asciz	"iso9660 volume descriptor (CD sector 16): OK CD001"
msg_iso_size:	.asciz	"medium size unknown to the BIOS: ISO9660 volume + pattern region, sectors="
msg_last:	.asciz	"last sector: OK"
msg_lba:	.asciz	" lba="
msg_multi:	.asciz	"multi-sector read: OK"
msg_multi_n:	.asciz	" sectors="
msg_multi_b:	.asciz	" bytes=32768 (one int 13h call, buffer 0x10000)"
msg_count_skip:	.asciz	"boot counter: SKIP (2048-byte sectors: CD-ROM, read-only, nothing written)"
msg_cread:	.asciz	"boot counter (LBA 32): OK read count="
msg_cwrite:	.asciz	"boot counter write (AH=43h): OK count="
msg_cverify:	.asciz	"boot counter read-back: OK count="
msg_bootcount:	.asciz	"BOOT COUNT "
msg_d81_self:	.asciz	"drive 0x81: is the boot drive, skipped"
msg_d81_none:	.asciz	"drive 0x81: not present"
msg_d81:	.asciz	"drive 0x81: OK"
msg_d81_ok:	.asciz	" last-sector=OK multi-sector=OK"
msg_ok:		.asciz	"LUNGATE-BOOT OK count="
msg_none:	.asciz	"none"
msg_mismatch:	.asciz	": pattern mismatch in lba "
msg_at_byte:	.asciz	" at byte "
msg_found:	.asciz	", sector starts with 0x"
msg_wrote:	.asciz	", wrote "

msg_f_ext:	.asciz	"int13-ext: AH=41h says no int 13h extensions"
msg_f_params:	.asciz	"drive-params: AH=48h failed"
msg_f_params_bad: .asciz "drive-params: unsupported geometry:"
msg_f_readback:	.asciz	"program-readback: reading LBA 0..7 failed"
msg_f_readback_cmp: .asciz "program-readback: LBA 0..7 differ from the program in memory"
msg_f_iso:	.asciz	"iso9660: reading CD sector 16 failed"
msg_f_iso_cmp:	.asciz	"iso9660: CD sector 16 is not an ISO9660 primary volume descriptor"
msg_f_last:	.asciz	"last-sector"
msg_f_multi:	.asciz	"multi-sector"
msg_f_cread:	.asciz	"counter-read: reading the counter sector failed"
msg_f_cmagic:	.asciz	"counter-read: no LUNGATE-BOOTCNT magic at LBA 32 (not a lungate demo disk?)"
msg_f_cwrite:	.asciz	"counter-write: AH=43h failed"
msg_f_cverify:	.asciz	"counter-verify: reading the counter back failed"
msg_f_cverify_magic: .asciz "counter-verify: LUNGATE-BOOTCNT magic gone after the write"
msg_f_cverify_cmp: .asciz "counter-verify: read back count="
msg_f_d81_params: .asciz "drive81-params: AH=48h failed on drive 0x81"
msg_f_d81_params_bad: .asciz "drive81-params: unsupported geometry:"
msg_f_d81_last:	.asciz	"drive81-last-sector"
msg_f_d81_multi: .asciz	"drive81-multi-sector"

	.org	PROG_SECTORS * 512 - 8	/* fails if the program outgrew it */
prog_sig:	.ascii	LUNGATE_BOOT_PROG_SIG
prog_end:

	.if	PROG_SECTORS > LUNGATE_BOOT_PROG_MAX_SECTORS
	.error	"PROG_SECTORS overlaps the boot counter"
	.endif

	.section .note.GNU-stack, "", @progbits
