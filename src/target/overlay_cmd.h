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

/* Write a client's merged disk (its layer over its version) to the new
 * file out, power-cut safe (a temporary file, fsync, rename without
 * replacing, fsync the folder), as commit does; messages into res.  -1 on
 * failure (nothing left at out). */
int lg_ovl_commit_file(struct lg_ovl_ctx *x, struct lg_storage *so, const char *initiator,
                       const char *out, bool force, json_t *res);

/* A new result {"ok": true, "messages": [], "errors": []}, and a message
 * (an error makes "ok" false). */
json_t *lg_ovl_result_new(void);
void lg_ovl_add_msg(json_t *res, bool error, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* The command line's side of these commands.  Ask a gateway (fd, closed
 * after) req (taken), showing its progress lines on a terminal after
 * progress_prefix (NULL: none asked for); NULL, said on stderr, on failure. */
json_t *lg_ovl_ask(int fd, const char *what, json_t *req, const char *progress_prefix);
/* Load config for working offline; NULL with the exit status in *rc (said). */
struct lg_model *lg_ovl_offline(const char *what, const char *config, const char *control,
                                int *rc);
/* Print res (--json: as it is; else with print) and free it; the exit status. */
int lg_ovl_output(const char *sub, json_t *res, bool as_json,
                  int (*print)(const char *sub, const json_t *res));

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
