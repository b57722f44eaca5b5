/* The `lungate overlay` subcommands. */
#ifndef LUNGATE_TARGET_OVERLAY_CMD_H
#define LUNGATE_TARGET_OVERLAY_CMD_H

#include <stdbool.h>

#include "backends/cow.h"
#include "target/model.h"

/* argv[0] is "overlay"; returns the exit status. */
int cmd_overlay(int argc, char **argv);

/* Call fn for every overlay file of a cow storage object (errors to stderr
 * unless quiet); -1 when the folder cannot be read or fn failed. */
int lg_overlay_foreach(struct lg_storage *so,
                       int (*fn)(struct lg_storage *, const char *path,
                                 const struct cow_info *, void *),
                       void *arg, bool quiet);

#endif
