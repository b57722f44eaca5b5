/* targetcli's object commands (`lungate /backstores/fileio create NAME FILE`,
 * `lungate /iscsi create IQN`, `.../tpg1/luns create`, `.../acls create`,
 * `delete`, `set attribute`, `set auth`, `get`, ...) as operations on a
 * config (rtslib-fb saveconfig.json shape), and targetcli's `ls` tree of a
 * config.  One implementation for every caller: the control socket applies
 * the result to a running gateway, `lungate -c CONFIG ...` writes it to a
 * file, and the web console calls the same functions. */
#ifndef LUNGATE_TARGET_ADMIN_H
#define LUNGATE_TARGET_ADMIN_H

#include <stddef.h>
#include <jansson.h>

struct lg_admin_ctx {
  const char *cwd;                 /* relative file arguments are against it (NULL: as given) */
  const char *const *portals;      /* a new TPG's portals, "ADDR:PORT" (the gateway's
                                    * --listen); none: targetcli's 0.0.0.0:3260 */
  size_t n_portals;
};

/* Run one command: path is a targetcli path ("/backstores/fileio",
 * "/iscsi/IQN/tpg1/luns"), verb "create", "delete", "set", "get", "enable"
 * or "disable", args its arguments (positional, then key=value, as targetcli
 * takes them).  The config is never modified: on success *out is the new
 * config (NULL when nothing changes, as for get) and *msg says what was done
 * (targetcli's words); on failure -1, *out NULL and *msg names the thing at
 * fault and what to do.  *msg is malloc'd. */
int lg_admin_run(const json_t *config, const struct lg_admin_ctx *ctx, const char *path,
                 const char *verb, size_t argc, const char *const *argv, json_t **out,
                 char **msg);

/* The verbs of a path, for completion and help ("create delete ls"); NULL
 * when the path does not exist in config. */
const char *lg_admin_verbs(const json_t *config, const char *path);

/* targetcli's `ls` tree of config below path ("/" for all), lines of width
 * columns (targetcli: the terminal's, at most 132; 132 when not a terminal).
 * sizes: an array of {plugin, name, size} (a running gateway's `ls` answer's
 * storage_objects) or NULL (sizes from the config, or the file's).  NULL
 * with *err when path does not exist.  Malloc'd. */
char *lg_admin_tree(const json_t *config, const json_t *sizes, const char *path, int width,
                    char **err);

/* Every path of config, one a line ("/backstores/fileio/disk0", ...), for
 * completion.  Malloc'd. */
char *lg_admin_paths(const json_t *config);

/* An empty config: {"storage_objects": [], "targets": []}. */
json_t *lg_admin_empty(void);

#endif
