/* `lungate overlay list|reset|commit|gc`: the overlay lifecycle.
 *
 * The operations work on a model's cow storage objects and return JSON
 * results.  `lungate overlay` sends them to a running gateway's control
 * socket when one serves the config (the gateway runs them, and can log a
 * client out first with --force), and runs them itself on the overlay
 * directories otherwise (a running gateway holds its overlays locked, and
 * these then say so instead of touching them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/cow.h"
#include "ctl/ctl.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define LIVE_WAIT_MS 20000           /* a forced logout must end within this */

static void overlay_usage(FILE *f)
{
  fprintf(f,
    "usage: lungate overlay list   [-c CONFIG] [NAME]\n"
    "       lungate overlay reset  [-c CONFIG] NAME INITIATOR|--all [--force]\n"
    "       lungate overlay commit [-c CONFIG] NAME INITIATOR NEW-BASE-FILE|rbd:POOL/IMAGE@SNAP [--force]\n"
    "       lungate overlay gc     [-c CONFIG] --days N [--dry-run] [NAME]\n"
    "  [--control SOCKET] [--json]\n"
    "NAME is a cow storage object's name or a target IQN (all its cow LUNs).\n"
    "A running gateway is asked through its control socket (--control, default\n"
    "%s); without one, -c CONFIG works on the overlay files.\n"
    "--force logs a client out before resetting or committing its overlay.\n",
    lg_ctl_default_path() ? lg_ctl_default_path() : "none");
}

json_t *lg_ovl_result_new(void)
{
  return json_pack("{s:b,s:[],s:[]}", "ok", 1, "messages", "errors");
}

void lg_ovl_add_msg(json_t *res, bool error, const char *fmt, ...)
{
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  json_array_append_new(json_object_get(res, error ? "errors" : "messages"), json_string(buf));
  if (error)
    json_object_set_new(res, "ok", json_false());
}

/* The cow storage objects NAME selects (all of them when NAME is NULL). */
static size_t select_cows(struct lg_model *m, const char *name, struct lg_storage **out,
                          size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < m->n_storage && n < max; i++) {
    struct lg_storage *so = m->storage[i];
    if (so->ops != &lg_cow_backstore)
      continue;
    bool take = !name || !strcmp(so->name, name);
    struct lg_target *t = name ? lg_model_find_target(m, name) : NULL;
    for (size_t k = 0; t && k < t->n_tpgs; k++)
      for (size_t l = 0; l < t->tpgs[k].n_luns; l++)
        take |= t->tpgs[k].luns[l].so == so;
    if (take)
      out[n++] = so;
  }
  return n;
}

/* Select, or say in res that nothing matched; 0 when nothing did. */
static size_t select_or_fail(struct lg_ovl_ctx *x, const char *name, struct lg_storage **out,
                             size_t max, json_t *res)
{
  size_t n = select_cows(x->m, name, out, max);
  if (n == 0)
    lg_ovl_add_msg(res, true, "%s%s%s has no cow storage object%s",
            x->m->path ? x->m->path : "the configuration", name ? ": " : "", name ? name : "",
            name ? " by that name or target IQN" : "");
  return n;
}

/* "TARGET/LUN" of every LUN that serves so, comma-separated. */
static void lun_names(struct lg_model *m, const struct lg_storage *so, char *out, size_t len)
{
  *out = '\0';
  for (size_t i = 0; i < m->n_targets; i++)
    for (size_t k = 0; k < m->targets[i].n_tpgs; k++)
      for (size_t l = 0; l < m->targets[i].tpgs[k].n_luns; l++)
        if (m->targets[i].tpgs[k].luns[l].so == so) {
          size_t used = strlen(out);
          snprintf(out + used, len - used, "%s%s/%llu", used ? "," : "", m->targets[i].iqn,
                   (unsigned long long)m->targets[i].tpgs[k].luns[l].index);
        }
}

typedef int overlay_fn(struct lg_ovl_ctx *x, struct lg_storage *so, const char *path,
                       const struct cow_info *info, void *arg, json_t *res);

struct clone_walk {
  struct lg_ovl_ctx *x;
  struct lg_storage *so;
  overlay_fn *fn;
  void *arg;
  json_t *res;
  int rc;
};

static int clone_step(const char *path, const struct cow_info *info, void *arg)
{
  struct clone_walk *w = arg;
  if (w->fn(w->x, w->so, path, info, w->arg, w->res) < 0)
    w->rc = -1;
  return 0;
}

/* Call fn for every overlay file (or RBD clone) of a cow storage object. */
static int foreach_overlay(struct lg_ovl_ctx *x, struct lg_storage *so, overlay_fn *fn,
                           void *arg, json_t *res)
{
  if (cow_in_ceph(so->h)) { /* "overlay_pool": the clients' RBD clones */
    struct clone_walk w = { x, so, fn, arg, res, 0 };
    if (cow_clones_foreach(so->h, clone_step, &w) < 0 && !w.rc)
      lg_ovl_add_msg(res, true, "listing the RBD clones of %s failed", so->name);
    return w.rc ? w.rc : 0;
  }
  const char *dir = cow_overlay_dir(so->h);
  DIR *d = opendir(dir);
  if (!d) {
    lg_ovl_add_msg(res, true, "overlay_dir %s of %s: %s", dir, so->name, strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".cow"))
      continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct cow_info info;
    int r = cow_info_read(path, &info);
    if (r < 0) {
      json_t *w = json_object_get(res, "warnings");
      if (!w)
        json_object_set_new(res, "warnings", w = json_array());
      char msg[PATH_MAX + 128];
      snprintf(msg, sizeof msg, "%s: not a readable overlay (%s); skipped", path, strerror(-r));
      json_array_append_new(w, json_string(msg));
      continue;
    }
    if (fn(x, so, path, &info, arg, res) < 0)
      rc = -1;
  }
  closedir(d);
  return rc;
}

struct plain_walk {
  int (*fn)(struct lg_storage *, const char *, const struct cow_info *, void *);
  void *arg;
};

static int plain_step(struct lg_ovl_ctx *x, struct lg_storage *so, const char *path,
                      const struct cow_info *info, void *arg, json_t *res)
{
  (void)x;
  (void)res;
  struct plain_walk *w = arg;
  return w->fn(so, path, info, w->arg);
}

int lg_overlay_foreach(struct lg_storage *so,
                       int (*fn)(struct lg_storage *, const char *path,
                                 const struct cow_info *, void *),
                       void *arg, bool quiet)
{
  struct plain_walk w = { fn, arg };
  json_t *res = json_object();
  if (!res)
    return -1;
  int rc = foreach_overlay(NULL, so, plain_step, &w, res);
  if (!quiet)
    lg_ovl_print("walk", res);
  json_decref(res);
  return rc;
}

/* Is a client's overlay live: in a gateway, an iSCSI session uses it;
 * offline, a process (a gateway) holds it open. */
static bool overlay_live(struct lg_ovl_ctx *x, struct lg_storage *so, const char *client,
                         const char *path)
{
  if (cow_in_ceph(so->h)) /* its lock, held by this gateway or another */
    return (x->logout && lg_overlay_is_live_by_name(so, client)) ||
           cow_clone_live(so->h, client);
  if (x->logout && so->per_initiator)
    return lg_overlay_is_live_by_name(so, client);
  return cow_in_use(path);
}

static int list_one(struct lg_ovl_ctx *x, struct lg_storage *so, const char *path,
                    const struct cow_info *info, void *arg, json_t *res)
{
  (void)arg;
  char luns[1024];
  lun_names(x->m, so, luns, sizeof luns);
  uint64_t allocated = info->allocated; /* in a gateway, an open view's live figure */
  if (x->logout && so->per_initiator && info->client[0])
    lg_overlay_allocated_open(so, info->client, &allocated);
  json_array_append_new(json_object_get(res, "overlays"),
    json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:b,s:s}", "storage", so->name, "luns", luns,
              "initiator", info->client[0] ? info->client : NULL,
              "allocated", (json_int_t)allocated, "quota", (json_int_t)cow_quota(so->h),
              "size", (json_int_t)info->size, "last_use", (json_int_t)info->last_use,
              "live", overlay_live(x, so, info->client, path), "file", path));
  return 0;
}

json_t *lg_ovl_list(struct lg_ovl_ctx *x, const char *name)
{
  json_t *res = lg_ovl_result_new();
  json_object_set_new(res, "overlays", json_array());
  struct lg_storage *cows[256];
  size_t n = select_or_fail(x, name, cows, 256, res);
  for (size_t i = 0; i < n; i++)
    foreach_overlay(x, cows[i], list_one, NULL, res);
  return res;
}

/* Wait until no session uses the client's overlay; false on a timeout. */
static bool wait_not_live(struct lg_storage *so, const char *client)
{
  for (int ms = 0; ms < LIVE_WAIT_MS; ms += 50) {
    if (!lg_overlay_is_live_by_name(so, client))
      return true;
    struct timespec ts = { 0, 50 * 1000000 };
    nanosleep(&ts, NULL);
  }
  return false;
}

/* In a gateway, hold the client off its overlay (logged out first with
 * force); false, with the reason in res, when it is live and not forced. */
static bool hold_client(struct lg_ovl_ctx *x, struct lg_storage *so, const char *client,
                        bool force, const char *what, json_t *res, bool *logged_out)
{
  *logged_out = false;
  if (!x->logout || !so->per_initiator)
    return true;
  char safe[LG_SAFE_MAX];
  lg_safe(client, safe, sizeof safe);
  lg_overlay_block(so, client, true);
  if (!lg_overlay_is_live_by_name(so, client))
    return true;
  if (!force) {
    lg_overlay_block(so, client, false);
    lg_ovl_add_msg(res, true, "overlay of %s on %s: in use (the client is logged in); log it out "
            "first, or add --force to log it out and %s it", safe, so->name, what);
    return false;
  }
  lg_info("overlay %s: logging out initiator=%s on storage=%s (--force)", what, safe, so->name);
  int n = x->logout(so, client, x->arg);
  if (!wait_not_live(so, client)) {
    lg_overlay_block(so, client, false);
    lg_ovl_add_msg(res, true, "overlay of %s on %s: the client's sessions did not end within %d s",
            safe, so->name, LIVE_WAIT_MS / 1000);
    return false;
  }
  lg_ovl_add_msg(res, false, "logged out %s (%d session%s)", safe, n, n == 1 ? "" : "s");
  *logged_out = true;
  return true;
}

static void release_client(struct lg_ovl_ctx *x, struct lg_storage *so, const char *client)
{
  if (x->logout && so->per_initiator)
    lg_overlay_block(so, client, false);
}

/* Reset one client's overlay (client NULL or "": the shared one). */
static int reset_client(struct lg_ovl_ctx *x, struct lg_storage *so, const char *client,
                        bool force, bool quiet_missing, json_t *res)
{
  char safe[LG_SAFE_MAX];
  lg_safe(client && *client ? client : "(shared)", safe, sizeof safe);
  const char *who = so->per_initiator && client && *client ? client : NULL;
  bool cut_off = false;
  if (who && !hold_client(x, so, who, force, "reset", res, &cut_off))
    return -1;
  /* a running OS was cut off (or was already, by an earlier forced reset):
   * its reconnects must find a failing disk, not the fresh one (overlays.c),
   * so its boot's ISIDs go into the new record */
  struct cow_info before = { 0 };
  if (!who || cow_record_read(so->h, who, &before) < 0)
    memset(&before, 0, sizeof before);
  bool fence = x->logout && (cut_off || before.boot.fenced) && before.boot.n;
  int r = cow_overlay_remove(so->h, who);
  if (r == 0 && fence && lg_overlay_fence(so, who, &before.boot) == 0) {
    lg_kv(LG_WARN, "overlay fenced", "storage=%s initiator=%s reason=%s action=\"its OS "
          "finds its disk failing until it boots again\"", LG_Q(so->name), safe,
          cut_off ? "\"reset --force of a live client\""
                  : "\"a reset of a client a forced reset had fenced\"");
    lg_ovl_add_msg(res, false, "%s: its running OS finds its disk failing until it boots again", safe);
  }
  if (who)
    release_client(x, so, who);
  if (r == -ENOENT) {
    if (!quiet_missing)
      lg_ovl_add_msg(res, false, "%s has no overlay on %s", safe, so->name);
    return 0;
  }
  if (r < 0) {
    lg_ovl_add_msg(res, true, "overlay of %s on %s: %s", safe, so->name,
            r != -EBUSY ? strerror(-r)
            : x->logout ? "in use (open in the FUSE view, or the LUN's shared overlay)"
                        : "in use by a running gateway; log the client out first");
    return -1;
  }
  if (x->logout)
    lg_kv(LG_INFO, "overlay reset", "storage=%s initiator=%s by=administrator", LG_Q(so->name),
          safe);
  lg_ovl_add_msg(res, false, "reset %s on %s", safe, so->name);
  return 0;
}

static int reset_one(struct lg_ovl_ctx *x, struct lg_storage *so, const char *path,
                     const struct cow_info *info, void *arg, json_t *res)
{
  (void)path;
  return reset_client(x, so, info->client, *(bool *)arg, false, res);
}

json_t *lg_ovl_reset(struct lg_ovl_ctx *x, const char *name, const char *initiator, bool force)
{
  json_t *res = lg_ovl_result_new();
  struct lg_storage *cows[256];
  size_t n = select_or_fail(x, name, cows, 256, res);
  for (size_t i = 0; i < n; i++) {
    if (!initiator)
      foreach_overlay(x, cows[i], reset_one, &force, res);
    else
      reset_client(x, cows[i], cows[i]->per_initiator ? initiator : NULL, force, false, res);
  }
  return res;
}

struct gc_arg {
  uint64_t max_age;
  bool dry_run;
};

static int gc_one(struct lg_ovl_ctx *x, struct lg_storage *so, const char *path,
                  const struct cow_info *info, void *arg, json_t *res)
{
  struct gc_arg *g = arg;
  uint64_t now = (uint64_t)time(NULL);
  if (info->last_use + g->max_age > now)
    return 0;
  char safe[LG_SAFE_MAX];
  lg_safe(info->client, safe, sizeof safe);
  if (overlay_live(x, so, info->client, path) || cow_in_use(path)) {
    /* a live client is not idle, whatever its record says */
    lg_ovl_add_msg(res, false, "kept %s on %s: in use by a running gateway", safe, so->name);
    return 0;
  }
  if (g->dry_run) {
    lg_ovl_add_msg(res, false, "would remove %s on %s (unused for %llu days): %s", safe, so->name,
            (unsigned long long)((now - info->last_use) / 86400), path);
    return 0;
  }
  return reset_client(x, so, info->client, false, true, res);
}

json_t *lg_ovl_gc(struct lg_ovl_ctx *x, const char *name, long days, bool dry_run)
{
  json_t *res = lg_ovl_result_new();
  struct lg_storage *cows[256];
  size_t n = select_or_fail(x, name, cows, 256, res);
  struct gc_arg g = { (uint64_t)days * 86400, dry_run };
  for (size_t i = 0; i < n; i++)
    foreach_overlay(x, cows[i], gc_one, &g, res);
  return res;
}

/* Write a client's merged view (its overlay over the base) to a new file.
 * Power-cut safe: the data goes to a temporary file in the same folder,
 * which is synced and only then given the new name (never replacing a file
 * that exists), and the folder is synced; after a crash the name holds the
 * whole disk or does not exist. */
static int commit_view(struct lg_ovl_ctx *x, struct lg_storage *view, const char *initiator,
                       const char *out, json_t *res, bool as_version)
{
  int rc = -1, fd = -1, dfd = -1;
  size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  char *tmp = NULL, *dir = strdup(out);
  struct stat sb;
  if (!buf || !dir) {
    lg_ovl_add_msg(res, true, "cannot commit to %s: out of memory", out);
    goto out;
  }
  if (lstat(out, &sb) == 0 || errno != ENOENT) {
    lg_ovl_add_msg(res, true, "cannot create %s: %s%s", out, errno == ENOENT ? "exists" : strerror(errno),
            " (choose a new file name: commit never overwrites)");
    goto out;
  }
  char *slash = strrchr(dir, '/');
  const char *base_name = slash ? slash + 1 : out;
  if (slash)
    *(slash == dir ? slash + 1 : slash) = 0;
  if (asprintf(&tmp, "%s/.%s.commit-XXXXXX", slash ? dir : ".", base_name) < 0) {
    tmp = NULL;
    lg_ovl_add_msg(res, true, "cannot commit to %s: out of memory", out);
    goto out;
  }
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0 || fchmod(fd, 0644) < 0) {
    lg_ovl_add_msg(res, true, "cannot create a temporary file beside %s: %s", out, strerror(errno));
    goto out;
  }
  uint64_t size = view->size;
  if (ftruncate(fd, (off_t)size) < 0) {
    lg_ovl_add_msg(res, true, "%s: %s", tmp, strerror(errno));
    goto out;
  }
  bool tty = x->progress && isatty(STDERR_FILENO);
  int last_pct = -1;
  char label[LG_SAFE_MAX + 32]; /* what the progress names: the client (commit), the copy */
  snprintf(label, sizeof label, "%s%s", as_version ? "copying the disk of " : "", initiator);
  for (uint64_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
    int r = view->ops->pread(view->h, buf, n, off);
    if (r < 0) {
      lg_ovl_add_msg(res, true, "reading %s's disk at %llu: %s", initiator, (unsigned long long)off,
              strerror(-r));
      goto out;
    }
    bool zero = buf[0] == 0 && !memcmp(buf, buf + 1, n - 1);
    ssize_t w = zero ? (ssize_t)n : pwrite(fd, buf, n, (off_t)off); /* keep zeroes sparse */
    if (w != (ssize_t)n) {
      lg_ovl_add_msg(res, true, "writing %s: %s", tmp, w < 0 ? strerror(errno) : "short write (is the disk full?)");
      goto out;
    }
    int pct = (int)((off + n) * 100 / size);
    if (pct != last_pct && x->on_progress)
      x->on_progress(x->parg, label, off + n, size);
    else if (tty && pct != last_pct)
      fprintf(stderr, "\r%s%s: %3d%%", as_version ? "" : "committing ", label, pct);
    last_pct = pct;
  }
  if (fsync(fd) < 0) {
    lg_ovl_add_msg(res, true, "%s: %s", tmp, strerror(errno));
    goto out;
  }
  /* the name last, and never over a file that appeared meanwhile */
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) < 0) {
    bool fallback = errno == EINVAL || errno == ENOSYS; /* a file system without it */
    if (!fallback || link(tmp, out) < 0) {
      lg_ovl_add_msg(res, true, "cannot create %s: %s%s", out, strerror(errno),
              errno == EEXIST ? " (choose a new file name: commit never overwrites)" : "");
      goto out;
    }
    unlink(tmp);
  }
  free(tmp);
  tmp = NULL;
  dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) < 0) {
    lg_ovl_add_msg(res, true, "syncing the folder of %s: %s", out, strerror(errno));
    goto out;
  }
  if (tty)
    fprintf(stderr, "\n");
  if (as_version)
    lg_ovl_add_msg(res, false, "wrote %s's disk (%llu bytes) to %s", initiator,
            (unsigned long long)size, out);
  else
    lg_ovl_add_msg(res, false, "wrote %s's disk (%llu bytes) to %s.\nTo make it the next base, "
            "publish it as a new version (lungate image publish), or point the base storage "
            "object's \"dev\" at it and reset the overlays (they were made over the old base "
            "and will be refused).", initiator, (unsigned long long)size, out);
  rc = 0;
out:
  if (fd >= 0)
    close(fd);
  if (dfd >= 0)
    close(dfd);
  if (tmp && fd >= 0)
    unlink(tmp);
  free(tmp);
  free(dir);
  free(buf);
  return rc;
}

json_t *lg_ovl_commit(struct lg_ovl_ctx *x, const char *name, const char *initiator,
                      const char *out, bool force)
{
  json_t *res = lg_ovl_result_new();
  struct lg_storage *cows[256];
  size_t n = select_or_fail(x, name, cows, 256, res);
  if (n == 0)
    return res;
  struct lg_storage *so = cows[0];
  char path[PATH_MAX], safe[LG_SAFE_MAX];
  bool cut_off; /* a commit leaves the client's disk as it was: no fence */
  lg_safe(initiator, safe, sizeof safe);
  if (n > 1 || !so->per_initiator) {
    lg_ovl_add_msg(res, true, "name one per-initiator cow storage object to commit from");
  } else if (cow_in_ceph(so->h) ? !cow_clone_exists(so->h, initiator)
                                : cow_overlay_path(so->h, initiator, path, sizeof path) < 0 ||
                                    access(path, F_OK) < 0) {
    lg_ovl_add_msg(res, true, "%s has no overlay on %s (nothing to commit)", safe, so->name);
  } else if (hold_client(x, so, initiator, force, "commit", res, &cut_off)) {
    char *why = NULL;
    struct lg_storage *view = lg_overlay_get(so, initiator, &why);
    if (!view) {
      lg_ovl_add_msg(res, true, "%s", why ? why : lg_get_error());
    } else {
      if (!strncmp(out, "rbd:", 4)) { /* a new RBD image and snapshot: the next base */
        char err[1024];
        if (cow_clone_commit(view->h, out + 4, err, sizeof err) < 0)
          lg_ovl_add_msg(res, true, "commit of %s: %s", safe, err);
        else
          lg_ovl_add_msg(res, false, "wrote %s's disk to the RBD image and snapshot %s.\nTo make it "
                  "the next base, point the base rbd object's \"image\" and \"snapshot\" at "
                  "it and reset the clients (their clones were made from the old base and "
                  "will be refused).", safe, out + 4);
      } else {
        commit_view(x, view, safe, out, res, false);
      }
      lg_overlay_put(view);
    }
    free(why);
    release_client(x, so, initiator);
  }
  return res;
}

void lg_human_bytes(uint64_t n, char *out, size_t len)
{
  static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int lg_ovl_print(const char *sub, const json_t *res)
{
  size_t i;
  json_t *v;
  json_t *ovs = json_object_get(res, "overlays");
  if (!strcmp(sub, "list") && json_is_array(ovs)) {
    printf("%-12s %-44s %10s %10s  %-16s %s\n", "STORAGE", "INITIATOR", "ALLOCATED",
           "QUOTA", "LAST USE", "FILE");
    json_array_foreach(ovs, i, v) {
      char alloc[32], quota[32] = "-", when[32] = "-", safe[LG_SAFE_MAX];
      const char *client = json_string_value(json_object_get(v, "initiator"));
      uint64_t q = (uint64_t)json_integer_value(json_object_get(v, "quota"));
      time_t t = (time_t)json_integer_value(json_object_get(v, "last_use"));
      lg_human_bytes((uint64_t)json_integer_value(json_object_get(v, "allocated")), alloc, sizeof alloc);
      if (q)
        lg_human_bytes(q, quota, sizeof quota);
      if (t) {
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
      }
      printf("%-12s %-44s %10s %10s  %-16s %s%s\n",
             json_string_value(json_object_get(v, "storage")),
             client ? lg_safe(client, safe, sizeof safe) : "(shared)", alloc, quota, when,
             json_string_value(json_object_get(v, "file")),
             json_is_true(json_object_get(v, "live")) ? "  (in use)" : "");
    }
  }
  json_array_foreach(json_object_get(res, "messages"), i, v)
    printf("%s\n", json_string_value(v));
  json_array_foreach(json_object_get(res, "warnings"), i, v)
    fprintf(stderr, "lungate: %s\n", json_string_value(v));
  json_array_foreach(json_object_get(res, "errors"), i, v)
    fprintf(stderr, "lungate: %s\n", json_string_value(v));
  const char *err = json_string_value(json_object_get(res, "error"));
  if (err)
    fprintf(stderr, "lungate: %s\n", err);
  return json_is_true(json_object_get(res, "ok")) ? 0 : 1;
}

static bool progress_shown;

/* A gateway's progress line (of a commit, a publish), on the terminal;
 * arg: what goes before its "initiator" field ("committing "). */
static void print_progress(void *arg, const json_t *progress)
{
  json_int_t done = json_integer_value(json_object_get(progress, "done"));
  json_int_t total = json_integer_value(json_object_get(progress, "total"));
  const char *who = json_string_value(json_object_get(progress, "initiator"));
  if (total > 0) {
    fprintf(stderr, "\r%s%s: %3d%%", (const char *)arg, who ? who : "",
            (int)(done * 100 / total));
    progress_shown = true;
  }
}

json_t *lg_ovl_ask(int fd, const char *what, json_t *req, const char *progress_prefix)
{
  char *err = NULL;
  bool tty = progress_prefix && isatty(STDERR_FILENO);
  json_object_set_new(req, "progress", json_boolean(tty));
  json_t *res = lg_ctl_call_progress(fd, req, &err, tty ? print_progress : NULL,
                                     (void *)progress_prefix);
  if (tty && progress_shown)
    fputc('\n', stderr);
  json_decref(req);
  close(fd);
  if (!res)
    fprintf(stderr, "lungate %s: %s\n", what, err ? err : "out of memory");
  free(err);
  return res;
}

struct lg_model *lg_ovl_offline(const char *what, const char *config, const char *control,
                                int *rc)
{
  char *err = NULL;
  if (!config) {
    fprintf(stderr, "lungate %s: no gateway answers on %s; give the gateway's config with "
            "-c CONFIG to work on it offline\n", what,
            control ? control : lg_ctl_default_path() ? lg_ctl_default_path() : "(none)");
    *rc = 2;
    return NULL;
  }
  struct lg_model *m = lg_model_load_file(config, &err);
  if (!m) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    *rc = 1;
  }
  free(err);
  return m;
}

int lg_ovl_output(const char *sub, json_t *res, bool as_json,
                  int (*print)(const char *sub, const json_t *res))
{
  int rc;
  if (as_json) {
    char *text = json_dumps(res, JSON_INDENT(2));
    printf("%s\n", text ? text : "null");
    free(text);
    rc = json_is_true(json_object_get(res, "ok")) ? 0 : 1;
  } else {
    rc = print(sub, res);
  }
  json_decref(res);
  return rc;
}

int cmd_overlay(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "control", required_argument, NULL, 'C' },
    { "all", no_argument, NULL, 'a' },
    { "force", no_argument, NULL, 'f' },
    { "json", no_argument, NULL, 'j' },
    { "days", required_argument, NULL, 'd' },
    { "dry-run", no_argument, NULL, 'n' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2) {
    overlay_usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
    overlay_usage(stdout);
    return 0;
  }
  const char *config = NULL, *control = NULL;
  bool all = false, dry_run = false, force = false, as_json = false;
  long days = -1;
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'C': control = optarg; break;
    case 'a': all = true; break;
    case 'f': force = true; break;
    case 'j': as_json = true; break;
    case 'd': days = strtol(optarg, NULL, 10); break;
    case 'n': dry_run = true; break;
    case 'h': overlay_usage(stdout); return 0;
    default: overlay_usage(stderr); return 2;
    }
  }
  char **rest = argv + optind;
  int nrest = argc - optind;
  bool ok_args = (!strcmp(sub, "list") && nrest <= 1) ||
                 (!strcmp(sub, "reset") && nrest == (all ? 1 : 2)) ||
                 (!strcmp(sub, "commit") && nrest == 3) ||
                 (!strcmp(sub, "gc") && nrest <= 1 && days >= 0);
  if (!ok_args) {
    overlay_usage(stderr);
    return 2;
  }
  const char *name = nrest ? rest[0] : NULL;
  char outbuf[PATH_MAX];
  const char *out = NULL;
  if (!strcmp(sub, "commit")) { /* the gateway may run elsewhere in the tree */
    out = strncmp(rest[2], "rbd:", 4) ? lg_ctl_abspath(rest[2], outbuf, sizeof outbuf)
                                      : rest[2]; /* a new RBD image: no path */
  }

  /* a gateway that serves this config (or the one named): ask it */
  char *err = NULL;
  int fd = lg_ctl_connect_for(control, config, &err);
  if (fd == -2) {
    fprintf(stderr, "lungate overlay %s: %s\n", sub, err ? err : "out of memory");
    free(err);
    return 1;
  }
  free(err);
  err = NULL;
  json_t *res;
  struct lg_model *m = NULL;
  char what[64];
  snprintf(what, sizeof what, "overlay %s", sub);
  if (fd >= 0) {
    char cmd[32];
    snprintf(cmd, sizeof cmd, "overlay-%s", sub);
    json_t *req = json_pack("{s:s,s:s?,s:s?,s:b,s:s?,s:I,s:b}", "cmd", cmd, "name", name,
                            "initiator", !strcmp(sub, "reset") || !strcmp(sub, "commit")
                                         ? (all ? NULL : rest[1]) : NULL,
                            "force", force, "file", out, "days", (json_int_t)days,
                            "dry_run", dry_run);
    if (!(res = lg_ovl_ask(fd, what, req, !strcmp(sub, "commit") ? "committing " : NULL)))
      return 1;
  } else {
    int rc = 0;
    if (!(m = lg_ovl_offline(what, config, control, &rc)))
      return rc;
    struct lg_ovl_ctx x = { .m = m, .progress = true };
    if (!strcmp(sub, "list"))
      res = lg_ovl_list(&x, name);
    else if (!strcmp(sub, "reset"))
      res = lg_ovl_reset(&x, name, all ? NULL : rest[1], force);
    else if (!strcmp(sub, "commit"))
      res = lg_ovl_commit(&x, name, rest[1], out, force);
    else
      res = lg_ovl_gc(&x, name, days, dry_run);
  }
  int rc = lg_ovl_output(sub, res, as_json, lg_ovl_print);
  lg_model_unref(m);
  return rc;
}

int lg_ovl_commit_file(struct lg_ovl_ctx *x, struct lg_storage *so, const char *initiator,
                       const char *out, bool force, json_t *res)
{
  char path[PATH_MAX], safe[LG_SAFE_MAX];
  bool cut_off;
  int rc = -1;
  lg_safe(initiator, safe, sizeof safe);
  if (cow_overlay_path(so->h, initiator, path, sizeof path) < 0 || access(path, F_OK) < 0) {
    lg_ovl_add_msg(res, true, "%s has no overlay on %s (nothing to publish)", safe, so->name);
  } else if (hold_client(x, so, initiator, force, "publish", res, &cut_off)) {
    char *why = NULL;
    struct lg_storage *view = lg_overlay_get(so, initiator, &why);
    if (!view) {
      lg_ovl_add_msg(res, true, "%s", why ? why : lg_get_error());
    } else {
      rc = commit_view(x, view, safe, out, res, true);
      lg_overlay_put(view);
    }
    free(why);
    release_client(x, so, initiator);
  }
  return rc;
}
