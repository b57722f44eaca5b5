/* Fuzz CDB decoding and execution against a 1 MiB in-memory LUN.  Input:
 * 16 bytes of CDB, 1 byte of flags (bit 0: no LUN, bit 1: write protect),
 * 4 bytes of transfer buffer size, then data-out bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi.h"

#define MEM_SIZE (1u << 20)
static uint8_t mem[MEM_SIZE];

static int mem_pread(void *h, void *buf, size_t n, uint64_t off)
{
  (void)h;
  if (off > MEM_SIZE || n > MEM_SIZE - off)
    abort(); /* the SCSI layer must never ask beyond the LUN */
  memcpy(buf, mem + off, n);
  return 0;
}
static int mem_pwrite(void *h, const void *buf, size_t n, uint64_t off, unsigned f)
{
  (void)h;
  (void)f;
  if (off > MEM_SIZE || n > MEM_SIZE - off)
    abort();
  memcpy(mem + off, buf, n);
  return 0;
}
static int mem_flush(void *h) { (void)h; return 0; }
static bool yes(void *h) { (void)h; return true; }

static const struct lg_backstore_ops mem_ops = {
  .name = "mem", .pread = mem_pread, .pwrite = mem_pwrite, .flush = mem_flush,
  .can_write = yes, .can_flush = yes,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 21)
    return 0;
  static struct lg_storage so = { .name = "mem", .plugin = "mem", .ops = &mem_ops,
                                  .size = MEM_SIZE, .block_size = 512, .serial = "fuzz" };
  struct lg_lun_view view = { .index = 0, .so = &so, .write_protect = data[16] & 2 };
  struct scsi_nexus nx = { .luns = &view, .n_luns = 1 };
  struct scsi_task t;
  memset(&t, 0, sizeof t);
  memcpy(t.cdb, data, 16);
  t.lun = (data[16] & 1) ? NULL : &view;
  t.nexus = &nx;
  uint32_t edtl;
  memcpy(&edtl, data + 17, 4);
  edtl %= 2u << 20;
  if (scsi_parse(&t) < 0)
    return 0;
  uint32_t cap = t.spdtl < edtl ? t.spdtl : edtl;
  if (t.dir == SCSI_DIR_OUT && cap < t.spdtl)
    return 0; /* the transport refuses these before any data */
  t.buf = calloc(1, cap + 1);
  t.bufcap = cap;
  if (t.dir == SCSI_DIR_OUT)
    memcpy(t.buf, data + 21, size - 21 < cap ? size - 21 : cap);
  scsi_exec(&t);
  free(t.buf);
  return 0;
}
