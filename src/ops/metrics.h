/* Counters for the Prometheus endpoint (serve --metrics ADDR:PORT).
 *
 * Per-LUN counters live in struct lg_lun_stats, one per LUN of a TPG (inside
 * struct lg_lun); a session's LUN view points at it.  The command path adds to
 * them with relaxed atomics only: no lock, no allocation.  The endpoint reads
 * them when scraped, together with the session registry and the overlays. */
#ifndef LUNGATE_OPS_METRICS_H
#define LUNGATE_OPS_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the command latency histogram, in microseconds. */
#define LG_LAT_BOUNDS_US { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, \
                           250000, 500000, 1000000, 2500000 }
#define LG_LAT_BUCKETS 15                /* the bounds above, then +Inf */

enum lg_op_kind { LG_OP_READ, LG_OP_WRITE, LG_OP_OTHER, LG_OP_KINDS };

struct lg_lun_stats {
  _Atomic uint64_t commands[LG_OP_KINDS];
  _Atomic uint64_t bytes_read, bytes_written;
  _Atomic uint64_t check_conditions;       /* commands answered CHECK CONDITION */
  _Atomic uint64_t latency[LG_LAT_BUCKETS]; /* per bucket, not cumulative */
  _Atomic uint64_t latency_sum_ns;
};

/* Monotonic nanoseconds (when a command arrived). */
uint64_t lg_now_ns(void);

/* One finished command on a LUN (stats may be NULL): its opcode, SCSI status,
 * bytes sent to / taken from the initiator, and when it arrived. */
void lg_stats_command(struct lg_lun_stats *stats, uint8_t opcode, uint8_t status,
                      uint32_t bytes_in, uint32_t bytes_out, uint64_t start_ns);

/* A login that completed (ok) or a Login Response that refused one. */
void lg_stats_login(bool ok);

/* A login to a per-client disk as the boot rule judged it (target/boot_rule.h). */
enum lg_stats_judged { LG_JUDGED_BOOT, LG_JUDGED_RECONNECT, LG_JUDGED_FENCED, LG_JUDGED_KINDS };
void lg_stats_judged(enum lg_stats_judged kind);
/* A client's layer reset at its boot by a policy: "reset" (after_idle,
 * on_boot) or "on_new_version" (a new image version). */
enum lg_reset_policy { LG_RESET_AFTER_IDLE, LG_RESET_ON_BOOT, LG_RESET_ON_NEW_VERSION,
                       LG_RESET_POLICIES };
void lg_stats_policy_reset(enum lg_reset_policy policy);

struct lg_model;
struct lg_metrics;

/* Serve GET /metrics on "ADDR:PORT" from a thread of its own.  Each scrape
 * renders the model current(arg) returns (a reference, which it drops), so
 * a reload is followed without telling the endpoint.  NULL with a message in
 * *err (malloc'd). */
struct lg_metrics *lg_metrics_start(struct lg_model *(*current)(void *arg), void *arg,
                                    const char *addr, char **err);
void lg_metrics_stop(struct lg_metrics *mx);

/* The exposition text (Prometheus text format 0.0.4) for a model; malloc'd,
 * length in *len; NULL when out of memory. */
char *lg_metrics_render(struct lg_model *m, size_t *len);

/* Write value as a label value: '\\', '"' and newline escaped as the format
 * wants; other control bytes, '%' and bytes >= 0x80 as %HH, so a hostile
 * initiator name can neither break the text nor carry invalid UTF-8. */
void lg_metrics_label(char *out, size_t outlen, const char *value);

#endif
