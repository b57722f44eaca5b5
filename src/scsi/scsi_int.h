/* Internals of the SCSI layer: the opcode table entry and byte helpers. */
#ifndef LUNGATE_SCSI_INT_H
#define LUNGATE_SCSI_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "scsi/pr.h"
#include "scsi/scsi.h"
#include "scsi/ua.h"

/* per-opcode flags */
#define OP_NEEDS_LUN   (1u << 0)  /* fails with LUN NOT SUPPORTED on an unmapped LUN */
#define OP_WRITES      (1u << 1)  /* modifies the medium: write protection applies */
#define OP_HAS_SA      (1u << 2)  /* service action in byte 1 bits 0-4 */
#define OP_RES_OK      (1u << 3)  /* allowed while another nexus holds a reservation */

struct scsi_op {
  uint8_t opcode;
  uint16_t sa;                       /* service action, if OP_HAS_SA */
  const char *name;
  uint8_t cdb_len;
  uint16_t flags;
  int (*parse)(struct scsi_task *t); /* NULL: no data, nothing to decode */
  void (*exec)(struct scsi_task *t);
  uint8_t usage[16];                 /* CDB usage bitmap (REPORT SUPPORTED OPCODES) */
};

/* The table, in opcode (then service action) order. */
extern const struct scsi_op scsi_ops[];
extern const size_t scsi_n_ops;
/* MMC (mmc.c): the CD-only rows, and the disk rows a CD answers too. */
extern const struct scsi_op mmc_ops[];
extern const size_t mmc_n_ops;
extern const uint8_t mmc_shared_opcodes[];
extern const size_t mmc_n_shared;

/* The rows the task's LUN answers (by its device type), in opcode order. */
struct scsi_optable {
  const struct scsi_op *rows[255];
  size_t n;
  uint8_t index[256];                /* opcode -> first row + 1; 0: none */
};
const struct scsi_optable *scsi_optable(const struct scsi_task *t);

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t get32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

/* One I_T nexus on one LU (lu.c). */
struct scsi_lu_nexus {
  const struct scsi_nexus *nx;
  struct ua_queue ua;                /* under the LU's lock */
  atomic_uint ua_n;                  /* ua.n, for a look without the lock */
  atomic_uint epoch;                 /* bumped to abort the nexus's commands on the LU */
  struct scsi_lu_nexus *next;
};

/* The SCSI state of a logical unit, shared by every nexus (lu.c). */
struct scsi_lu {
  pthread_mutex_t lock;              /* pr, nexuses, the UA queues */
  struct pr_state pr;
  atomic_bool pr_active;             /* registrations or a reservation exist */
  struct scsi_lu_nexus *nexuses;
  atomic_bool wce;                   /* caching page: write cache enabled */
  atomic_bool swp;                   /* control page: software write protect */
};

/* Join the task to its nexus on the LU and report a pending unit attention;
 * -1 when the task is answered. */
int lu_enter(struct scsi_task *t);
/* Does a persistent reservation forbid the command? */
bool lu_pr_conflict(const struct scsi_task *t);
/* Would a persistent reservation on so refuse nexus nx a read or a write of
 * its blocks (EXTENDED COPY's source and destination)? */
bool lu_pr_blocks(struct lg_storage *so, const struct scsi_nexus *nx, bool write);
/* Take the nexus's oldest unit attention (REQUEST SENSE). */
bool lu_take_ua(struct scsi_task *t, uint16_t *asc);
bool lu_wce(struct lg_storage *so);
bool lu_swp(struct lg_storage *so);
int lu_parse_pr_in(struct scsi_task *t);
int lu_parse_pr_out(struct scsi_task *t);
void lu_pr_in(struct scsi_task *t);
void lu_pr_out(struct scsi_task *t);
int lu_parse_mode_select(struct scsi_task *t);
void lu_mode_select(struct scsi_task *t);
/* One mode page of a LU: current values (pc 0), changeable mask (1),
 * defaults (2); its length, 0 for a page we do not have (spc.c). */
size_t spc_mode_page(struct lg_storage *so, uint8_t *p, uint8_t code, int pc);
/* INVALID FIELD IN PARAMETER LIST pointing at a byte (and bit, or -1). */
void scsi_sense_param(struct scsi_task *t, unsigned byte, int bit);

/* Copy a reply of n bytes out, truncated to the allocation length. */
void scsi_reply(struct scsi_task *t, const void *data, size_t n, uint32_t alloc_len);

/* Handlers (sbc.c, spc.c). */
int sbc_parse_rw(struct scsi_task *t);
int sbc_parse_verify(struct scsi_task *t);
int sbc_parse_sync(struct scsi_task *t);
void sbc_read(struct scsi_task *t);
bool sbc_read_nowait(struct scsi_task *t);  /* from the page cache, or false */
bool sbc_read_async(struct scsi_task *t, void (*done)(struct scsi_task *t));
/* Start a command through one of the backstore's *_async calls: start
 * returns its result (0: started, scsi_io_async_done then called once with
 * the request's result; -errno: not started); false when not started, the
 * task as it was, for scsi_exec on a worker. */
bool scsi_io_async(struct scsi_task *t, void (*done)(struct scsi_task *t),
                   int (*start)(struct scsi_task *t, struct lg_storage *so));
void scsi_io_async_done(void *arg, int result);
bool sbc_write_async(struct scsi_task *t, void (*done)(struct scsi_task *t));
bool sbc_sync_cache_async(struct scsi_task *t, void (*done)(struct scsi_task *t));
bool lbp_unmap_async(struct scsi_task *t, void (*done)(struct scsi_task *t));
bool lbp_write_same_async(struct scsi_task *t, void (*done)(struct scsi_task *t));
void sbc_write(struct scsi_task *t);
void sbc_verify(struct scsi_task *t);
void sbc_sync_cache(struct scsi_task *t);
void sbc_read_capacity10(struct scsi_task *t);
void sbc_read_capacity16(struct scsi_task *t);
void sbc_read_defect_data(struct scsi_task *t);
#define SBC_MAX_CAW_BLOCKS 8        /* COMPARE AND WRITE length (Block Limits) */
int sbc_parse_caw(struct scsi_task *t);
void sbc_compare_and_write(struct scsi_task *t);
#define SBC_MAX_ATOMIC_BYTES (1u << 20) /* WRITE ATOMIC, at least 256 blocks */
uint32_t sbc_max_atomic_blocks(uint32_t block_size);
int sbc_parse_write_atomic(struct scsi_task *t);
void sbc_write_atomic(struct scsi_task *t);
void sbc_orwrite(struct scsi_task *t);

#define LBP_MAX_UNMAP_BLOCKS 0x100000u    /* per UNMAP descriptor */
#define LBP_MAX_UNMAP_DESCRIPTORS 256u
bool lbp_can_unmap(const struct lg_storage *so);
int lbp_parse_unmap(struct scsi_task *t);
int lbp_parse_write_same(struct scsi_task *t);
void lbp_unmap(struct scsi_task *t);
void lbp_write_same(struct scsi_task *t);
void lbp_get_lba_status(struct scsi_task *t);

int xcopy_parse(struct scsi_task *t);
void xcopy_exec(struct scsi_task *t);
int xcopy_parse_results(struct scsi_task *t);
void xcopy_results(struct scsi_task *t);
size_t xcopy_vpd_page(const struct scsi_task *t, uint8_t *d);

size_t mmc_mode_page_capabilities(uint8_t *p, int pc);

int spc_parse_alloc(struct scsi_task *t);
void spc_test_unit_ready(struct scsi_task *t);
void spc_inquiry(struct scsi_task *t);
void spc_request_sense(struct scsi_task *t);
void spc_mode_sense(struct scsi_task *t);
void spc_report_luns(struct scsi_task *t);
void spc_report_opcodes(struct scsi_task *t);
void spc_start_stop(struct scsi_task *t);
void spc_prevent_allow(struct scsi_task *t);
void spc_reserve(struct scsi_task *t);
void spc_release(struct scsi_task *t);

#endif
