/* The overlay lifecycle (list, reset, commit, gc) on a model: offline on a
 * config's overlay directories, or inside a running gateway for its control
 * socket.  Results are JSON objects, printed the same way in both cases:
 *   {"ok": bool, "messages": [...], "errors": [...], "warnings": [...],
 *    "overlays": [...]} */
#ifndef LUNGATE_TARGET_OVERLAY_CMD_H
#define LUNGATE_TARGET_OVERLAY_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "backends/cow.h"
#include "target/model.h"

struct lg_model;
struct lg_storage;

struct lg_ovl_ctx {
  struct lg_model *m;
  /* In a gateway: liveness is an iSCSI session of the client, and a forced
   * reset or commit first ends the client's sessions with this (returns
   * how many it ended).  NULL offline: an overlay open by any process is
   * in use and left alone. */
  int (*logout)(const struct lg_storage *tmpl, const char *initiator, void *arg);
  void *arg;
  bool progress;                     /* commit progress on a terminal's stderr */
  /* or, in a gateway asked for it, each percent of a commit to this (the
   * control socket sends it to the command on the administrator's terminal) */
  void (*on_progress)(void *parg, const char *initiator, uint64_t done, uint64_t total);
  void *parg;
};

/* name: a cow storage object's name or a target IQN (NULL: every cow object).
 * Each returns a new result object. */
json_t *lg_ovl_list(struct lg_ovl_ctx *x, const char *name);
/* initiator NULL: every client (--all). */
json_t *lg_ovl_reset(struct lg_ovl_ctx *x, const char *name, const char *initiator,
                     bool force);
json_t *lg_ovl_commit(struct lg_ovl_ctx *x, const char *name, const char *initiator,
                      const char *out, bool force);
json_t *lg_ovl_gc(struct lg_ovl_ctx *x, const char *name, long days, bool dry_run);

/* Print a result (a table for "list", else its messages and errors);
 * returns the exit status. */
int lg_ovl_print(const char *sub, const json_t *res);

/* "1.5 MiB" */
void lg_human_bytes(uint64_t n, char *out, size_t len);

/* argv[0] is "overlay"; returns the exit status. */
int cmd_overlay(int argc, char **argv);

/* Call fn for every overlay file of a cow storage object (errors to stderr
 * unless quiet); -1 when the folder cannot be read or fn failed. */
int lg_overlay_foreach(struct lg_storage *so,
                       int (*fn)(struct lg_storage *, const char *path,
                                 const struct cow_info *, void *),
                       void *arg, bool quiet);

#endif
