/* `lungate image publish|list|rollback|prune`: image versions of a
 * per-initiator cow object.
 *
 * The versions live in lungate's own keys of the cow object:
 *   "versions": [{"id": 1, "file": "/srv/img/room-v1.img", "time": 1759737600,
 *                 "note": "...", "size": 16777216, "sum": "<64 hex digits>"}],
 *   "current": 2, "on_new_version": "reset" | "keep"
 * "sum" is the identity an overlay header records of the base it was made
 * over (backends/cow.c), so a client's layer names its version.  The first
 * publish records the base object's own file as version 1.
 *
 * Publish is power-cut safe: the new file is complete and synced (with its
 * folder) before the configuration names it, and the configuration is
 * written atomically (a temporary file, fsync, rename, fsync the folder).
 * After a cut, the old configuration (and maybe an unused new file) or the
 * new one is there, each complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "ctl/ctl.h"
#include "target/image_cmd.h"
#include "target/model.h"
#include "util/log.h"

/* The per-initiator cow object NAME (or the one behind target IQN NAME). */
static struct lg_storage *find_cow(struct lg_model *m, const char *name, json_t *res)
{
  struct lg_storage *found = NULL;
  for (size_t i = 0; i < m->n_storage; i++) {
    struct lg_storage *so = m->storage[i];
    if (so->ops != &lg_cow_backstore)
      continue;
    bool take = !strcmp(so->name, name);
    struct lg_target *t = lg_model_find_target(m, name);
    for (size_t k = 0; t && k < t->n_tpgs; k++)
      for (size_t l = 0; l < t->tpgs[k].n_luns; l++)
        take |= t->tpgs[k].luns[l].so == so;
    if (take && found && found != so) {
      lg_ovl_add_msg(res, true, "%s has more than one cow storage object; name one", name);
      return NULL;
    }
    if (take)
      found = so;
  }
  if (!found)
    lg_ovl_add_msg(res, true, "%s: no cow storage object by that name or target IQN",
            m->path ? m->path : "the configuration");
  else if (!found->per_initiator)
    lg_ovl_add_msg(res, true, "%s: image versions need a cow object with \"per_initiator\": "
            "true", found->name);
  else
    return found;
  return NULL;
}

/* The storage_objects entry plugin/name of cfg. */
static json_t *so_entry(json_t *cfg, const char *plugin, const char *name)
{
  size_t i;
  json_t *j;
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, j) {
    const char *p = json_string_value(json_object_get(j, "plugin"));
    const char *n = json_string_value(json_object_get(j, "name"));
    if (p && n && !strcmp(p, plugin) && !strcmp(n, name))
      return j;
  }
  return NULL;
}

static void config_dir(const struct lg_model *m, char *out, size_t len)
{
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", m->path ? m->path : ".");
  snprintf(out, len, "%s", dirname(buf));
}

/* path resolved against the config's folder, canonical when it exists. */
static void resolve(const struct lg_model *m, const char *path, char *out, size_t len)
{
  char dir[PATH_MAX], tmp[PATH_MAX];
  config_dir(m, dir, sizeof dir);
  if (lg_resolve_path(tmp, sizeof tmp, dir, path) < 0)
    snprintf(tmp, sizeof tmp, "%s", path);
  if (!realpath(tmp, out))
    snprintf(out, len, "%s", tmp);
}

/* The cow object's versions in cfg, made explicit: without "versions", the
 * base object's file becomes version 1 (the version its layers are over). */
static json_t *versions_of(struct lg_img_ctx *x, struct lg_storage *so, json_t *cow, json_t *cfg,
                           json_t *res)
{
  json_t *vers = json_object_get(cow, "versions");
  if (json_is_array(vers))
    return vers;
  const char *bref = json_string_value(json_object_get(cow, "base"));
  char plugin[64] = "", name[256] = "";
  if (!bref || sscanf(bref, "/backstores/%63[^/]/%255s", plugin, name) != 2)
    return NULL;
  json_t *base = so_entry(cfg, plugin, name);
  const char *dev = json_string_value(json_object_get(base, "dev"));
  if (cow_in_ceph(so->h)) { /* per-client clones: version 1 is the base snapshot */
    const char *pool = json_string_value(json_object_get(base, "pool"));
    const char *image = json_string_value(json_object_get(base, "image"));
    const char *snap = json_string_value(json_object_get(base, "snapshot"));
    char spec[1200];
    if (!image || !snap) {
      lg_ovl_add_msg(res, true, "%s: its base %s has no \"image\" and \"snapshot\"", so->name,
                     bref);
      return NULL;
    }
    snprintf(spec, sizeof spec, "rbd:%s/%s@%s", pool ? pool : "rbd", image, snap);
    vers = json_pack("[{s:i,s:s,s:I,s:s,s:I}]", "id", 1, "image", spec, "time",
                     (json_int_t)time(NULL), "note", "the base before versions", "size",
                     (json_int_t)so->size);
    json_object_set_new(cow, "versions", vers);
    json_object_set_new(cow, "current", json_integer(1));
    return vers;
  }
  if (!dev) {
    lg_ovl_add_msg(res, true, "%s: image versions need a base object with a file (\"dev\"); %s has "
            "none", so->name, bref);
    return NULL;
  }
  char file[PATH_MAX], hex[2 * COW_SUM_LEN + 1];
  uint8_t sum[COW_SUM_LEN];
  struct stat st;
  resolve(x->ovl.m, dev, file, sizeof file);
  if (cow_current_sum(so->h, sum) < 0)
    return NULL;
  if (stat(file, &st) == 0 && (st.st_mode & 0222) && chmod(file, st.st_mode & ~0222) < 0)
    lg_ovl_add_msg(res, false, "warning: could not make %s (version 1) read-only: %s", file,
            strerror(errno));
  cow_sum_hex(sum, hex);
  vers = json_pack("[{s:i,s:s,s:I,s:s,s:I,s:s}]", "id", 1, "file", file, "time",
                   (json_int_t)(stat(file, &st) == 0 ? st.st_mtime : time(NULL)), "note",
                   "the base before versions", "size", (json_int_t)so->size, "sum", hex);
  json_object_set_new(cow, "versions", vers);
  json_object_set_new(cow, "current", json_integer(1));
  return vers;
}

static json_int_t current_of(json_t *cow)
{
  json_t *c = json_object_get(cow, "current");
  if (json_is_integer(c))
    return json_integer_value(c);
  json_int_t best = 0;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(cow, "versions"), i, v)
    if (json_integer_value(json_object_get(v, "id")) > best)
      best = json_integer_value(json_object_get(v, "id"));
  return best;
}

static json_t *version_by_id(json_t *vers, json_int_t id)
{
  size_t i;
  json_t *v;
  json_array_foreach(vers, i, v)
    if (json_integer_value(json_object_get(v, "id")) == id)
      return v;
  return NULL;
}

/* The clients whose layers are over each version: {"ID": [names]}. */
struct usage {
  json_t *by_id;
};

static int usage_one(struct lg_storage *so, const char *path, const struct cow_info *info,
                     void *arg)
{
  (void)path;
  struct usage *u = arg;
  long id = info->have_sum ? cow_version_of_sum(so->h, info->base_sum) : -1;
  if (id < 0 || !info->client[0])
    return 0;
  char key[32];
  snprintf(key, sizeof key, "%ld", id);
  json_t *a = json_object_get(u->by_id, key);
  if (!a)
    json_object_set_new(u->by_id, key, a = json_array());
  json_array_append_new(a, json_string(info->client));
  return 0;
}

static json_t *usage_of(struct lg_storage *so)
{
  struct usage u = { json_object() };
  lg_overlay_foreach(so, usage_one, &u, true);
  return u.by_id;
}

static json_t *clients_on(json_t *usage, json_int_t id)
{
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)id);
  json_t *a = json_object_get(usage, key);
  return a ? json_incref(a) : json_array(); /* a new reference */
}

/* The cow object NAME, a copy of the config to change and its entry there;
 * NULL (said in res) when there is no such object. */
static struct lg_storage *begin(struct lg_img_ctx *x, const char *name, json_t *res,
                                json_t **cfg, json_t **cow)
{
  struct lg_storage *so = find_cow(x->ovl.m, name, res);
  *cfg = so ? json_deep_copy(x->ovl.m->json) : NULL;
  *cow = so ? so_entry(*cfg, "cow", so->name) : NULL;
  return so;
}

json_t *lg_img_list(struct lg_img_ctx *x, const char *name)
{
  json_t *res = lg_ovl_result_new();
  struct lg_storage *so = find_cow(x->ovl.m, name, res);
  if (!so)
    return res;
  json_t *cow = so_entry(x->ovl.m->json, "cow", so->name);
  json_t *vers = json_object_get(cow, "versions"), *out = json_array(), *v;
  json_t *usage = usage_of(so);
  json_int_t cur = current_of(cow);
  size_t i;
  json_object_set_new(res, "storage", json_string(so->name));
  json_array_foreach(vers, i, v) {
    json_int_t id = json_integer_value(json_object_get(v, "id"));
    json_t *e = json_pack("{s:I,s:O*,s:O*,s:O*,s:O*,s:O*,s:b,s:o}", "id", id, "file",
                          json_object_get(v, "file"), "image", json_object_get(v, "image"),
                          "time", json_object_get(v, "time"),
                          "note", json_object_get(v, "note"), "size",
                          json_object_get(v, "size"), "current", id == cur, "clients",
                          clients_on(usage, id));
    if (x->ovl.logout) /* in a gateway: sessions' layers open over it now */
      json_object_set_new(e, "open", json_integer(cow_version_views(so->h, (uint32_t)id)));
    json_array_append_new(out, e);
  }
  json_object_set_new(res, "versions", out);
  if (!json_array_size(vers))
    lg_ovl_add_msg(res, false, "%s has no versions yet: its base object is its image.  Publish one "
            "with: lungate image publish %s FILE", so->name, so->name);
  json_decref(usage);
  return res;
}

/* Progress of a publish: the client's disk copied, then the new file read. */
struct pub_progress {
  struct lg_img_ctx *x;
  const char *what;
  int last;
};

static void pub_progress(void *arg, uint64_t done, uint64_t total)
{
  struct pub_progress *p = arg;
  int pct = total ? (int)(done * 100 / total) : 100;
  if (pct == p->last)
    return;
  p->last = pct;
  if (p->x->ovl.on_progress)
    p->x->ovl.on_progress(p->x->ovl.parg, p->what, done, total);
  else if (p->x->ovl.progress && isatty(STDERR_FILENO))
    fprintf(stderr, "\r%s: %3d%%%s", p->what, pct, pct == 100 ? "\n" : "");
}

/* fsync a file and its folder: the version is durable before a config names it. */
static int sync_file(const char *file)
{
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) < 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return -e;
  }
  close(fd);
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", file);
  int dfd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  int r = fsync(dfd) < 0 ? -errno : 0;
  close(dfd);
  return r;
}

/* Append version e (id next) to vers, make it current and save cfg; -1 (said
 * in res, with extra) when the configuration could not be changed. */
static int add_version(struct lg_img_ctx *x, json_t *cfg, json_t *cow, json_t *vers, json_t *e,
                       json_int_t next, const char *note, const char *from_client,
                       const char *extra, json_t *res)
{
  if (note && *note)
    json_object_set_new(e, "note", json_string(note));
  if (from_client)
    json_object_set_new(e, "from_client", json_string(from_client));
  json_array_append_new(vers, e);
  json_object_set_new(cow, "current", json_integer(next));
  json_object_set_new(cow, "last_version", json_integer(next));
  char *why = NULL;
  if (x->commit(x->carg, cfg, &why) < 0) {
    lg_ovl_add_msg(res, true, "the configuration was not changed: %s%s", why ? why : "out of memory",
                   extra);
    free(why);
    return -1;
  }
  return 0;
}

/* Publish an RBD snapshot (spec "rbd:POOL/IMAGE@SNAP", NULL: a new one made
 * from a client's disk, named after the object and version) as version next
 * of an "overlay_pool" object.  The snapshot is never written. */
static void publish_rbd(struct lg_img_ctx *x, struct lg_storage *so, json_t *cfg, json_t *cow,
                        json_t *vers, json_int_t next, const char *file,
                        const char *from_client, const char *note, bool force, json_t *res)
{
  char spec[1200], err[1400], safe[LG_SAFE_MAX] = "";
  size_t i;
  json_t *v;
  if (file && strncmp(file, "rbd:", 4)) {
    lg_ovl_add_msg(res, true, "the versions of %s are RBD snapshots (its clients' disks are "
                   "clones): publish rbd:POOL/IMAGE@SNAPSHOT, not %s", so->name, file);
    return;
  }
  if (file) {
    snprintf(spec, sizeof spec, "%s", file);
  } else { /* beside the base image, in its pool */
    const char *bref = json_string_value(json_object_get(cow, "base"));
    char plugin[64] = "", bname[256] = "";
    const char *pool = NULL;
    if (bref && sscanf(bref, "/backstores/%63[^/]/%255s", plugin, bname) == 2)
      pool = json_string_value(json_object_get(so_entry(cfg, plugin, bname), "pool"));
    snprintf(spec, sizeof spec, "rbd:%s/%s-v%lld@v%lld", pool ? pool : "rbd", so->name,
             (long long)next, (long long)next);
  }
  json_array_foreach(vers, i, v)
    if (!strcmp(json_string_value(json_object_get(v, "image")) ?: "", spec)) {
      lg_ovl_add_msg(res, true, "%s is version %lld of %s already; versions never change: "
                     "publish a new snapshot", spec,
                     (long long)json_integer_value(json_object_get(v, "id")), so->name);
      return;
    }
  if (from_client) { /* the client's disk as a new image and snapshot (overlay commit) */
    lg_safe(from_client, safe, sizeof safe);
    json_t *cr = lg_ovl_commit(&x->ovl, so->name, from_client, spec, force);
    json_t *errs = json_object_get(cr, "errors");
    json_array_foreach(errs, i, v)
      lg_ovl_add_msg(res, true, "%s", json_string_value(v));
    size_t nerr = json_array_size(errs);
    json_decref(cr);
    if (nerr)
      return;
  }
  uint64_t size;
  if (cow_probe_rbd(so->h, spec + 4, &size, err, sizeof err) < 0) {
    lg_ovl_add_msg(res, true, "%s", err);
    return;
  }
  json_t *e = json_pack("{s:I,s:s,s:I,s:I}", "id", next, "image", spec, "time",
                        (json_int_t)time(NULL), "size", (json_int_t)size);
  if (add_version(x, cfg, cow, vers, e, next, note, from_client,
                  from_client ? " (the image and snapshot written stay)" : "", res) < 0)
    return;
  const char *pol = json_string_value(json_object_get(cow, "on_new_version"));
  bool keep = pol && !strcmp(pol, "keep");
  if (x->ovl.logout)
    lg_kv(LG_INFO, "image published", "storage=%s version=%lld image=%s%s%s", LG_Q(so->name),
          (long long)next, LG_Q(spec), from_client ? " from_client=" : "", safe);
  lg_ovl_add_msg(res, false, "published %s as version %lld of %s (current).  Running clients keep "
                 "their version; %s", spec, (long long)next, so->name,
                 keep ? "a client on an older version stays on it until it is reset "
                        "(\"on_new_version\": \"keep\"), new clients get this one"
                      : "each client gets this one at its next boot (its clone of the old "
                        "version is made anew)");
}

json_t *lg_img_publish(struct lg_img_ctx *x, const char *name, const char *file,
                       const char *from_client, const char *note, bool force)
{
  json_t *res = lg_ovl_result_new(), *cfg, *cow;
  struct lg_storage *so = begin(x, name, res, &cfg, &cow);
  if (!so)
    return res;
  json_t *vers = cow ? versions_of(x, so, cow, cfg, res) : NULL;
  char path[PATH_MAX] = "", safe[LG_SAFE_MAX];
  bool wrote = false;
  if (!vers)
    goto out;
  /* ids are never used again, even after a prune of the newest */
  json_int_t next = json_integer_value(json_object_get(cow, "last_version"));
  size_t i;
  json_t *v;
  json_array_foreach(vers, i, v)
    if (json_integer_value(json_object_get(v, "id")) > next)
      next = json_integer_value(json_object_get(v, "id"));
  next++;
  if (cow_in_ceph(so->h)) {
    publish_rbd(x, so, cfg, cow, vers, next, file, from_client, note, force, res);
    goto out;
  }
  if (file) {
    resolve(x->ovl.m, file, path, sizeof path);
  } else { /* beside the current version's file */
    const char *cf = json_string_value(json_object_get(version_by_id(vers, current_of(cow)),
                                                       "file"));
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", cf ? cf : ".");
    char *dir = dirname(buf);
    struct stat st;
    snprintf(path, sizeof path, "%s/%s-v%lld.img", dir, so->name, (long long)next);
    if (lstat(path, &st) == 0) /* left by a publish a power cut stopped before the config */
      snprintf(path, sizeof path, "%s/%s-v%lld-%lld.img", dir, so->name, (long long)next,
               (long long)time(NULL));
  }
  json_array_foreach(vers, i, v) {
    char other[PATH_MAX];
    const char *f = json_string_value(json_object_get(v, "file"));
    resolve(x->ovl.m, f ? f : "", other, sizeof other);
    if (!strcmp(other, path)) {
      lg_ovl_add_msg(res, true, "%s is version %lld of %s already; versions never change: publish "
              "a new file", path, (long long)json_integer_value(json_object_get(v, "id")),
              so->name);
      goto out;
    }
  }
  if (from_client) {
    lg_safe(from_client, safe, sizeof safe);
    if (lg_ovl_commit_file(&x->ovl, so, from_client, path, force, res) < 0)
      goto out;
    wrote = true;
  }
  uint64_t size;
  uint8_t sum[COW_SUM_LEN];
  char hex[2 * COW_SUM_LEN + 1], what[PATH_MAX + 16];
  snprintf(what, sizeof what, "reading %s", path);
  struct pub_progress pp = { x, what, -1 };
  if (cow_probe_file(so->h, path, &size, sum, pub_progress, &pp) < 0) {
    lg_ovl_add_msg(res, true, "%s", lg_get_error());
    goto out;
  }
  long same = cow_version_of_sum(so->h, sum);
  cow_sum_hex(sum, hex);
  json_array_foreach(vers, i, v)
    if (same < 0 && !strcmp(hex, json_string_value(json_object_get(v, "sum")) ?: ""))
      same = (long)json_integer_value(json_object_get(v, "id"));
  if (same >= 0) {
    lg_ovl_add_msg(res, true, "%s has the same content as version %ld of %s; nothing to publish "
            "(to make that version current again: lungate image rollback %s %ld)", path,
            same, so->name, so->name, same);
    goto out;
  }
  /* read-only: versions never change (a failure is only a warning: a file
   * system without modes, another owner) */
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & 0222) && chmod(path, st.st_mode & ~0222) < 0)
    lg_ovl_add_msg(res, false, "warning: could not make %s read-only: %s", path, strerror(errno));
  int r = sync_file(path);
  if (r < 0) {
    lg_ovl_add_msg(res, true, "syncing %s: %s", path, strerror(-r));
    goto out;
  }
  json_t *e = json_pack("{s:I,s:s,s:I,s:I,s:s}", "id", next, "file", path, "time",
                        (json_int_t)time(NULL), "size", (json_int_t)size, "sum", hex);
  if (add_version(x, cfg, cow, vers, e, next, note, from_client, "", res) < 0)
    goto out;
  wrote = false;
  const char *pol = json_string_value(json_object_get(cow, "on_new_version"));
  bool keep = pol && !strcmp(pol, "keep");
  if (x->ovl.logout)
    lg_kv(LG_INFO, "image published", "storage=%s version=%lld file=%s%s%s", LG_Q(so->name),
        (long long)next, LG_Q(path), from_client ? " from_client=" : "",
        from_client ? safe : "");
  lg_ovl_add_msg(res, false, "published %s as version %lld of %s (current).  Running clients keep "
          "their version; %s", path, (long long)next, so->name,
          keep ? "a client on an older version stays on it until it is reset "
                 "(\"on_new_version\": \"keep\"), new clients get this one"
               : "each client gets this one at its next boot (its layer on the old "
                 "version is reset)");
out:
  if (wrote)
    unlink(path); /* the client's disk written for a version that was not published */
  json_decref(cfg);
  return res;
}

json_t *lg_img_rollback(struct lg_img_ctx *x, const char *name, long version)
{
  json_t *res = lg_ovl_result_new(), *cfg, *cow;
  struct lg_storage *so = begin(x, name, res, &cfg, &cow);
  if (!so)
    return res;
  json_t *vers = json_object_get(cow, "versions");
  json_t *v = version_by_id(vers, version);
  const char *f = json_string_value(json_object_get(v, "file"));
  char *why = NULL;
  if (!v) {
    lg_ovl_add_msg(res, true, "%s has no version %ld (lungate image list %s)", so->name, version,
            so->name);
  } else if (current_of(cow) == version) {
    lg_ovl_add_msg(res, false, "version %ld of %s is current already", version, so->name);
  } else if (cow_in_ceph(so->h)) {
    const char *img = json_string_value(json_object_get(v, "image"));
    char err[1400];
    uint64_t size;
    if (!img || strncmp(img, "rbd:", 4) || cow_probe_rbd(so->h, img + 4, &size, err, sizeof err) < 0)
      lg_ovl_add_msg(res, true, "version %ld of %s: %s", version, so->name,
                     img ? err : "no \"image\"");
    else
      goto set;
  } else if (access(f ? f : "", R_OK) < 0) {
    lg_ovl_add_msg(res, true, "version %ld of %s: %s: %s", version, so->name, f ? f : "(no file)",
            strerror(errno));
  } else {
set:
    json_object_set_new(cow, "current", json_integer(version));
    if (x->commit(x->carg, cfg, &why) < 0) {
      lg_ovl_add_msg(res, true, "the configuration was not changed: %s", why ? why : "out of memory");
    } else {
      if (x->ovl.logout)
        lg_kv(LG_INFO, "image rolled back", "storage=%s version=%ld", LG_Q(so->name), version);
      lg_ovl_add_msg(res, false, "version %ld of %s is current again; running clients keep their "
              "version, booting clients get this one as after a publish", version, so->name);
    }
  }
  free(why);
  json_decref(cfg);
  return res;
}

/* Does any storage object of cfg (other than version vskip of cow) name file? */
static bool file_referenced(const struct lg_model *m, json_t *cfg, const char *file,
                            json_t *cow, json_int_t vskip)
{
  size_t i, k;
  json_t *j, *v;
  char other[PATH_MAX];
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, j) {
    const char *dev = json_string_value(json_object_get(j, "dev"));
    if (dev && (resolve(m, dev, other, sizeof other), !strcmp(other, file)))
      return true;
    json_array_foreach(json_object_get(j, "versions"), k, v) {
      const char *f = json_string_value(json_object_get(v, "file"));
      if (j == cow && json_integer_value(json_object_get(v, "id")) == vskip)
        continue;
      if (f && (resolve(m, f, other, sizeof other), !strcmp(other, file)))
        return true;
    }
  }
  return false;
}

json_t *lg_img_prune(struct lg_img_ctx *x, const char *name, long keep, bool dry_run)
{
  json_t *res = lg_ovl_result_new(), *cfg, *cow;
  struct lg_storage *so = begin(x, name, res, &cfg, &cow);
  if (!so)
    return res;
  json_t *vers = json_object_get(cow, "versions"), *gone = json_array(), *v;
  json_t *usage = usage_of(so);
  json_int_t cur = current_of(cow);
  size_t i, n = json_array_size(vers);
  /* the N newest are kept: the N highest ids */
  json_int_t floor = 0;
  for (size_t k = 0; keep > 0 && k < n; k++) {
    json_int_t id = json_integer_value(json_object_get(json_array_get(vers, k), "id"));
    size_t newer = 0;
    json_array_foreach(vers, i, v)
      newer += json_integer_value(json_object_get(v, "id")) > id;
    if (newer < (size_t)keep && (floor == 0 || id < floor))
      floor = id;
  }
  for (i = 0; i < json_array_size(vers);) {
    v = json_array_get(vers, i);
    json_int_t id = json_integer_value(json_object_get(v, "id"));
    json_t *users = clients_on(usage, id);
    unsigned open = cow_version_views(so->h, (uint32_t)id);
    const char *why = id == cur ? "current" : json_array_size(users) ? "used by a client's layer"
                      : open ? "open by a session" : floor && id >= floor ? "kept (--keep)"
                      : NULL;
    json_decref(users);
    if (why) {
      if (strcmp(why, "current") && strcmp(why, "kept (--keep)"))
        lg_ovl_add_msg(res, false, "kept version %lld of %s: %s", (long long)id, so->name, why);
      i++;
      continue;
    }
    json_array_append(gone, v);
    json_array_remove(vers, i);
  }
  json_decref(usage);
  char *err = NULL;
  if (!json_array_size(gone)) {
    lg_ovl_add_msg(res, false, "nothing to prune on %s", so->name);
  } else if (dry_run) {
    json_array_foreach(gone, i, v)
      lg_ovl_add_msg(res, false, "would remove version %lld of %s (%s)",
              (long long)json_integer_value(json_object_get(v, "id")), so->name,
              json_string_value(json_object_get(v, "file"))
                ?: json_string_value(json_object_get(v, "image")));
  } else if (x->commit(x->carg, cfg, &err) < 0) {
    lg_ovl_add_msg(res, true, "the configuration was not changed: %s", err ? err : "out of memory");
  } else {
    json_array_foreach(gone, i, v) {
      const char *f = json_string_value(json_object_get(v, "file"));
      const char *img = json_string_value(json_object_get(v, "image"));
      if (!f && img) { /* an RBD snapshot: forgotten, never removed */
        lg_ovl_add_msg(res, false, "removed version %lld of %s from the configuration; its "
                       "snapshot %s stays (lungate never removes RBD images or snapshots: "
                       "rbd snap rm / rbd rm when no longer needed)",
                       (long long)json_integer_value(json_object_get(v, "id")), so->name, img);
        continue;
      }
      char file[PATH_MAX];
      resolve(x->ovl.m, f ? f : "", file, sizeof file);
      bool shared = file_referenced(x->ovl.m, cfg, file, NULL, 0);
      bool removed = !shared && unlink(file) == 0;
      lg_ovl_add_msg(res, false, "removed version %lld of %s%s%s%s",
              (long long)json_integer_value(json_object_get(v, "id")), so->name,
              removed ? " and its file " : shared ? " (its file stays: another storage "
              "object names it) " : " (its file ", removed || shared ? "" : file,
              removed ? file : shared ? "" : " could not be removed)");
    }
    if (x->ovl.logout)
      lg_kv(LG_INFO, "image pruned", "storage=%s versions=%zu", LG_Q(so->name),
          json_array_size(gone));
  }
  free(err);
  json_decref(gone);
  json_decref(cfg);
  return res;
}

int lg_img_print(const char *sub, const json_t *res)
{
  size_t i;
  json_t *v;
  json_t *vers = json_object_get(res, "versions");
  if (!strcmp(sub, "list") && json_array_size(vers)) {
    printf("  %-7s %-16s %10s %7s  %-40s %s\n", "VERSION", "PUBLISHED", "SIZE", "CLIENTS",
           "FILE", "NOTE");
    json_array_foreach(vers, i, v) {
      char size[32] = "-", when[32] = "-";
      time_t t = (time_t)json_integer_value(json_object_get(v, "time"));
      if (json_is_integer(json_object_get(v, "size")))
        lg_human_bytes((uint64_t)json_integer_value(json_object_get(v, "size")), size,
                       sizeof size);
      if (t) {
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
      }
      const char *note = json_string_value(json_object_get(v, "note"));
      printf("%c %-7lld %-16s %10s %7zu  %-40s %s\n",
             json_is_true(json_object_get(v, "current")) ? '*' : ' ',
             (long long)json_integer_value(json_object_get(v, "id")), when, size,
             json_array_size(json_object_get(v, "clients")),
             json_string_value(json_object_get(v, "file"))
               ?: json_string_value(json_object_get(v, "image")) ?: "", note ? note : "");
    }
    printf("(* current: new clients and booting clients get it)\n");
  }
  return lg_ovl_print("image", res);
}

static void image_usage(FILE *f)
{
  fprintf(f,
    "usage: lungate image publish  [-c CONFIG] NAME FILE [--note TEXT]\n"
    "       lungate image publish  [-c CONFIG] NAME --from-client INITIATOR [FILE] [--note TEXT] [--force]\n"
    "       lungate image list     [-c CONFIG] NAME\n"
    "       lungate image rollback [-c CONFIG] NAME VERSION\n"
    "       lungate image prune    [-c CONFIG] NAME [--keep N] [--dry-run]\n"
    "  [--control SOCKET] [--json]\n"
    "NAME is a per-initiator cow storage object (or a target IQN with one).  A running\n"
    "gateway is asked through its control socket (--control, default %s); without\n"
    "one, -c CONFIG edits the config.  Running clients keep their version; a client\n"
    "gets the current one at its next boot (\"on_new_version\": \"reset\", the default)\n"
    "or when it is reset (\"keep\").  --from-client writes the client's disk as the new\n"
    "version's file (default: NAME-vN.img beside the current version's file).\n"
    "With per-client RBD clones (\"overlay_pool\") a version is an RBD snapshot: FILE\n"
    "is rbd:POOL/IMAGE@SNAP (--from-client default: rbd:POOL/NAME-vN@vN); prune forgets\n"
    "a version but never removes a snapshot.\n",
    lg_ctl_default_path() ? lg_ctl_default_path() : "none");
}

static int save_offline(void *arg, const json_t *cfg, char **why)
{
  const char *path = arg;
  int r = lg_json_save(cfg, path);
  if (r < 0 && asprintf(why, "writing %s: %s", path, strerror(-r)) < 0)
    *why = NULL;
  return r < 0 ? -1 : 0;
}

int cmd_image(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "control", required_argument, NULL, 'C' },
    { "from-client", required_argument, NULL, 'F' },
    { "note", required_argument, NULL, 'N' },
    { "keep", required_argument, NULL, 'k' },
    { "force", no_argument, NULL, 'f' },
    { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2) {
    image_usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
    image_usage(stdout);
    return 0;
  }
  const char *config = NULL, *control = NULL, *from = NULL, *note = NULL;
  bool force = false, dry_run = false, as_json = false;
  long keep = 0;
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'C': control = optarg; break;
    case 'F': from = optarg; break;
    case 'N': note = optarg; break;
    case 'k': keep = strtol(optarg, NULL, 10); break;
    case 'f': force = true; break;
    case 'n': dry_run = true; break;
    case 'j': as_json = true; break;
    case 'h': image_usage(stdout); return 0;
    default: image_usage(stderr); return 2;
    }
  }
  char **rest = argv + optind;
  int nrest = argc - optind;
  bool ok = (!strcmp(sub, "list") && nrest == 1) ||
            (!strcmp(sub, "publish") && (from ? nrest == 1 || nrest == 2 : nrest == 2)) ||
            (!strcmp(sub, "rollback") && nrest == 2) ||
            (!strcmp(sub, "prune") && nrest == 1 && keep >= 0);
  if (!ok) {
    image_usage(stderr);
    return 2;
  }
  const char *name = rest[0];
  char filebuf[PATH_MAX];
  const char *file = !strcmp(sub, "publish") && nrest == 2
                         ? !strncmp(rest[1], "rbd:", 4) ? rest[1] /* an RBD snapshot */
                         : lg_ctl_abspath(rest[1], filebuf, sizeof filebuf) : NULL;
  long version = !strcmp(sub, "rollback") ? strtol(rest[1], NULL, 10) : 0;

  char *err = NULL, what[64];
  int fd = lg_ctl_connect_for(control, config, &err);
  snprintf(what, sizeof what, "image %s", sub);
  if (fd == -2) {
    fprintf(stderr, "lungate %s: %s\n", what, err ? err : "out of memory");
    free(err);
    return 1;
  }
  free(err);
  json_t *res;
  struct lg_model *m = NULL;
  if (fd >= 0) {
    char cmd[32];
    snprintf(cmd, sizeof cmd, "image-%s", sub);
    json_t *req = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:b,s:I,s:I,s:b}", "cmd", cmd, "name",
                            name, "file", file, "initiator", from, "note", note, "force", force,
                            "version", (json_int_t)version, "keep", (json_int_t)keep,
                            "dry_run", dry_run);
    if (!(res = lg_ovl_ask(fd, what, req, !strcmp(sub, "publish") ? "" : NULL)))
      return 1;
  } else {
    int rc = 0;
    if (!(m = lg_ovl_offline(what, config, control, &rc)))
      return rc;
    struct lg_img_ctx x = { .ovl = { .m = m, .progress = true }, .commit = save_offline,
                            .carg = (void *)config };
    if (!strcmp(sub, "list"))
      res = lg_img_list(&x, name);
    else if (!strcmp(sub, "publish"))
      res = lg_img_publish(&x, name, file, from, note, force);
    else if (!strcmp(sub, "rollback"))
      res = lg_img_rollback(&x, name, version);
    else
      res = lg_img_prune(&x, name, keep, dry_run);
  }
  int rc = lg_ovl_output(sub, res, as_json, lg_img_print);
  lg_model_unref(m);
  return rc;
}
