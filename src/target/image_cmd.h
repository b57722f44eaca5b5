/* `lungate image publish|list|rollback|prune`: image versions of a
 * per-initiator cow object's base (README "Image versions").  Like the
 * overlay commands, they run in a running gateway (its control socket) or
 * offline on a config; a change is a new configuration, which the caller's
 * commit makes durable (saved atomically) and, in a gateway, applies. */
#ifndef LUNGATE_TARGET_IMAGE_CMD_H
#define LUNGATE_TARGET_IMAGE_CMD_H

#include <stdbool.h>
#include <jansson.h>

#include "target/overlay_cmd.h"

struct lg_img_ctx {
  struct lg_ovl_ctx ovl;             /* the model, logout (in a gateway), progress */
  /* Make cfg the configuration (saved to the config file; in a gateway also
   * applied).  -1 with *why (malloc'd). */
  int (*commit)(void *arg, const json_t *cfg, char **why);
  void *carg;
};

/* Results as the overlay commands' ({"ok", "messages", "errors"}); list adds
 * "versions": [{id, file, time, note, size, current, clients[], live}]. */
json_t *lg_img_list(struct lg_img_ctx *x, const char *name);
/* file: the new version's file (absolute), or with from_client where the
 * client's disk is written (NULL: beside the current version's file). */
json_t *lg_img_publish(struct lg_img_ctx *x, const char *name, const char *file,
                       const char *from_client, const char *note, bool force);
json_t *lg_img_rollback(struct lg_img_ctx *x, const char *name, long version);
json_t *lg_img_prune(struct lg_img_ctx *x, const char *name, long keep, bool dry_run);

int lg_img_print(const char *sub, const json_t *res);
/* argv[0] is "image"; returns the exit status. */
int cmd_image(int argc, char **argv);

#endif
