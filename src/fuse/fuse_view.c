/* The FUSE view: LUNs and clients' overlays as plain image files.
 *
 * Tree (built from the model at mount time, except the clients):
 *
 *   /<target IQN>/<lun>/disk.img             a LUN that is not per-initiator
 *   /<target IQN>/<lun>/base.img             the base of a per-initiator cow LUN
 *   /<target IQN>/<lun>/clients/<name>.img   one per overlay file in overlay_dir,
 *                                            <name> the initiator name it records;
 *                                            or one per RBD clone in overlay_pool,
 *                                            <name> the initiator name, lower-cased,
 *                                            that the clone's image name spells
 *
 * A name that cannot be a file name is escaped reversibly: '/' and '%' (and
 * the dots of "." and "..") become %XX.
 *
 * Nodes: an inode number indexes a table of nodes that only grows while the
 * view is mounted: the static tree, then one node per client overlay file
 * ever seen (found by a directory scan or a lookup: for clones, the pool's
 * image list, no clone opened until its file is), kept until unmount even
 * when its file goes, so a number never changes meaning (forget is a no-op).
 *
 * Data: every read and write goes through the storage object's backstore
 * ops (a client's file through its lg_overlay_get view, shared with its
 * iSCSI sessions), read into a per-thread buffer and replied with one
 * writev (fuse_reply_buf).  Requests are up to 1 MiB (max_read, max_write,
 * max_pages 256), readahead is raised to FV_READAHEAD_KB through the bdi's
 * sysfs knob (the kernel offers only 128 KiB at INIT), and a pool of worker
 * threads serves the session.  Backstore errors (-errno) become replies in
 * fv_reply_err only.
 *
 * Cache: base.img, read-only plain LUNs, every file of an offline mount
 * and clients with no live session are opened with keep_cache.  A live
 * client's file is not (its cache is dropped at each open), and since a
 * file's mtime is its overlay file's mtime (a clone's: its last write through
 * this gateway, else its RBD modify timestamp) and the attribute timeout is 1 s,
 * the kernel's auto_inval_data drops cached pages within a second of a
 * change made over iSCSI.
 *
 * Writes: base.img never; a client's file only with "writable" and no live
 * session (checked at open and at every write; EROFS otherwise), into its
 * overlay; disk.img only offline with "writable" (a gateway's sessions may
 * write it, and no session count is kept for plain LUNs).  A disk has a
 * fixed size: O_TRUNC is ignored, resizing fails with EPERM.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "fuse/fuse_view.h"
#include "target/model.h"
#include "util/log.h"

extern char **environ;

#define FV_MAX_IO (1u << 20)          /* max_read, max_write: 256 pages */
#define FV_READAHEAD_KB 4096          /* bdi readahead of the mount */
#define FV_MAX_THREADS 16
#define FV_STATIC_TIMEOUT 60.0        /* attributes of files that cannot change */
#define FV_LIVE_TIMEOUT 1.0           /* clients, and plain LUNs a gateway writes */
#define FV_FUSE_MAGIC 0x65735546      /* statfs f_type of a FUSE mount */

enum fv_kind {
  FV_DIR,                             /* root, a target, a LUN */
  FV_CLIENTS,                         /* a per-initiator LUN's clients/ */
  FV_BASE,                            /* base.img */
  FV_DISK,                            /* disk.img */
  FV_CLIENT,                          /* clients/<name>.img */
};

struct fv_node {
  fuse_ino_t ino;
  enum fv_kind kind;
  struct fv_node *parent;
  char *name;                         /* entry name in the parent */
  struct fv_node **kids;              /* FV_DIR, FV_CLIENTS (under lg_fuse.lock) */
  size_t n_kids, cap_kids;
  struct lg_storage *so;              /* the LUN's storage object (a template for clients) */
  char *mpath;                        /* file whose times the node shows, or NULL */
  bool cow_readonly;                  /* FV_CLIENT(S): the cow object is read-only */
  char *initiator;                    /* FV_CLIENT: as its overlay records it */
  char *stem;                         /* FV_CLIENT: overlay file name without ".cow";
                                       * a clone's: the initiator, lower-cased */
  bool ceph;                          /* FV_CLIENT(S): clients' disks are RBD clones */
};

/* An open file or directory. */
struct fv_handle {
  struct fv_handle *prev, *next;      /* lg_fuse.handles */
  struct fv_node *node;
  struct lg_storage *so;              /* files: where reads and writes go */
  bool view;                          /* so comes from lg_overlay_get */
  bool write;                         /* opened for writing */
  struct fv_dirent *ents;             /* directories: a snapshot of the entries */
  size_t n_ents;
};

struct fv_dirent {
  char *name;
  fuse_ino_t ino;
  mode_t type;
};

/* A worker's read buffer (thread-specific). */
struct fv_buf {
  void *p;
  size_t cap;
};

struct lg_fuse {
  struct lg_model *m;
  bool writable;                      /* --fuse-writable */
  bool offline;                       /* lungate mount: no iSCSI sessions exist */
  char *mountpoint;                   /* absolute */
  struct fuse_session *se;
  bool mounted;
  pthread_t threads[FV_MAX_THREADS];
  size_t n_threads;
  int done_efd;                       /* counts workers that ended by themselves */
  atomic_bool unmounted_logged;
  pthread_key_t buf_key;
  bool buf_key_ok;
  time_t started;
  pthread_mutex_t lock;               /* nodes, kids of FV_CLIENTS, handles */
  struct fv_node **nodes;             /* nodes[ino - 1] */
  size_t n_nodes, cap_nodes;
  struct fv_handle handles;           /* list head */
};

/* ---- errors: the one place where -errno becomes a FUSE reply ---- */

static void fv_reply_err(fuse_req_t req, int rc)
{
  int e = rc < 0 ? -rc : rc;
  if (rc > 0 || e >= 4096) /* not an -errno: a bug somewhere below */
    e = EIO;
  fuse_reply_err(req, e);
}

/* ---- names ---- */

/* The file name of a name: '/' and '%' (and the dots of "." and "..") as %XX.
 * malloc'd; NULL on ENOMEM. */
static char *fv_name_escape(const char *name, const char *suffix)
{
  static const char hex[] = "0123456789abcdef";
  bool dots = !strcmp(name, ".") || !strcmp(name, "..");
  size_t len = strlen(name), sl = strlen(suffix);
  char *out = malloc(3 * len + sl + 1), *p = out;
  if (!out)
    return NULL;
  for (const char *s = name; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '/' || ch == '%' || (dots && ch == '.')) {
      *p++ = '%';
      *p++ = hex[ch >> 4];
      *p++ = hex[ch & 15];
    } else {
      *p++ = (char)ch;
    }
  }
  memcpy(p, suffix, sl + 1);
  return out;
}

/* Reverse of fv_name_escape for file names that end in suffix; NULL when
 * file is not such a name (or on ENOMEM). */
static char *fv_name_unescape(const char *file, const char *suffix)
{
  size_t len = strlen(file), sl = strlen(suffix);
  if (len <= sl || strcmp(file + len - sl, suffix))
    return NULL;
  len -= sl;
  char *out = malloc(len + 1), *p = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    if (file[i] == '%') {
      unsigned v;
      if (i + 2 >= len || sscanf(file + i + 1, "%2x", &v) != 1 || v == 0) {
        free(out);
        return NULL;
      }
      *p++ = (char)v;
      i += 2;
    } else {
      *p++ = file[i];
    }
  }
  *p = '\0';
  /* only the canonical spelling names the file */
  char *again = fv_name_escape(out, suffix);
  bool same = again && !strcmp(again, file);
  free(again);
  if (!same) {
    free(out);
    return NULL;
  }
  return out;
}

/* ---- nodes ---- */

static struct fv_node *fv_node_new(struct lg_fuse *f, struct fv_node *parent, enum fv_kind kind,
                                   const char *name)
{
  struct fv_node *n = calloc(1, sizeof *n);
  if (!n || !(n->name = strdup(name)))
    goto oom;
  if (f->n_nodes == f->cap_nodes) {
    size_t cap = f->cap_nodes ? 2 * f->cap_nodes : 64;
    struct fv_node **nn = realloc(f->nodes, cap * sizeof *nn);
    if (!nn)
      goto oom;
    f->nodes = nn;
    f->cap_nodes = cap;
  }
  if (parent) {
    if (parent->n_kids == parent->cap_kids) {
      size_t cap = parent->cap_kids ? 2 * parent->cap_kids : 8;
      struct fv_node **k = realloc(parent->kids, cap * sizeof *k);
      if (!k)
        goto oom;
      parent->kids = k;
      parent->cap_kids = cap;
    }
    parent->kids[parent->n_kids++] = n;
  }
  n->kind = kind;
  n->parent = parent ? parent : n;
  f->nodes[f->n_nodes++] = n;
  n->ino = f->n_nodes; /* the root gets FUSE_ROOT_ID (1) */
  return n;
oom:
  if (n)
    free(n->name);
  free(n);
  return NULL;
}

static void fv_node_free(struct fv_node *n)
{
  free(n->name);
  free(n->kids);
  free(n->mpath);
  free(n->initiator);
  free(n->stem);
  free(n);
}

static struct fv_node *fv_node_get(struct lg_fuse *f, fuse_ino_t ino)
{
  pthread_mutex_lock(&f->lock);
  struct fv_node *n = ino >= 1 && ino <= f->n_nodes ? f->nodes[ino - 1] : NULL;
  pthread_mutex_unlock(&f->lock);
  return n;
}

static struct fv_node *fv_kid(struct fv_node *dir, const char *name)
{
  for (size_t i = 0; i < dir->n_kids; i++)
    if (!strcmp(dir->kids[i]->name, name))
      return dir->kids[i];
  return NULL;
}

/* ---- the static tree ---- */

static json_t *fv_so_json(struct lg_model *m, const char *plugin, const char *name)
{
  size_t i;
  json_t *j;
  json_array_foreach(json_object_get(m->json, "storage_objects"), i, j) {
    const char *p = json_string_value(json_object_get(j, "plugin"));
    const char *n = json_string_value(json_object_get(j, "name"));
    if (p && n && !strcmp(p, plugin) && !strcmp(n, name))
      return j;
  }
  return NULL;
}

static struct lg_storage *fv_find_storage(struct lg_model *m, const char *ref)
{
  if (!ref || strncmp(ref, "/backstores/", 12))
    return NULL;
  const char *p = ref + 12, *slash = strchr(p, '/');
  if (!slash)
    return NULL;
  for (size_t i = 0; i < m->n_storage; i++) {
    struct lg_storage *so = m->storage[i];
    if (strlen(so->plugin) == (size_t)(slash - p) && !strncmp(so->plugin, p, (size_t)(slash - p)) &&
        !strcmp(so->name, slash + 1))
      return so;
  }
  return NULL;
}

/* The file that holds a storage object's data (its times are the image's),
 * or NULL: a "dev" path, a shared overlay, or for a per-initiator template
 * its base's file.  malloc'd. */
static char *fv_data_path(struct lg_model *m, struct lg_storage *so, int depth)
{
  char path[PATH_MAX];
  if (depth > 4)
    return NULL;
  json_t *j = fv_so_json(m, so->plugin, so->name);
  if (so->ops == &lg_cow_backstore) {
    if (!so->per_initiator)
      return cow_overlay_path(so->h, NULL, path, sizeof path) == 0 ? strdup(path) : NULL;
    struct lg_storage *base =
      fv_find_storage(m, json_string_value(json_object_get(j, "base")));
    return base ? fv_data_path(m, base, depth + 1) : NULL;
  }
  const char *dev = json_string_value(json_object_get(j, "dev"));
  if (!dev || !*dev)
    return NULL;
  char *dir = m->path ? strdup(m->path) : NULL;
  int r = lg_resolve_path(path, sizeof path, dir ? dirname(dir) : NULL, dev);
  free(dir);
  return r == 0 ? strdup(path) : NULL;
}

static int fv_build_tree(struct lg_fuse *f)
{
  struct lg_model *m = f->m;
  struct fv_node *root = fv_node_new(f, NULL, FV_DIR, "");
  if (!root)
    return -ENOMEM;
  for (size_t t = 0; t < m->n_targets; t++) {
    struct lg_tpg *tpg = lg_target_tpg(&m->targets[t]);
    char *tname = fv_name_escape(m->targets[t].iqn, "");
    if (!tname)
      return -ENOMEM;
    if (!*tname || fv_kid(root, tname)) {
      lg_kv(LG_WARN, "fuse: a target is listed twice or has no name; shown once", "target=%s",
            LG_Q(tname));
      free(tname);
      continue;
    }
    struct fv_node *tn = fv_node_new(f, root, FV_DIR, tname);
    free(tname);
    if (!tn)
      return -ENOMEM;
    for (size_t l = 0; tpg && l < tpg->n_luns; l++) {
      struct lg_storage *so = tpg->luns[l].so;
      char lname[32];
      snprintf(lname, sizeof lname, "%" PRIu64, tpg->luns[l].index);
      if (fv_kid(tn, lname))
        continue;
      struct fv_node *ln = fv_node_new(f, tn, FV_DIR, lname);
      if (!ln)
        return -ENOMEM;
      bool clients = so->per_initiator && so->ops == &lg_cow_backstore &&
                     (cow_overlay_dir(so->h) || cow_in_ceph(so->h));
      struct fv_node *img = fv_node_new(f, ln, clients ? FV_BASE : FV_DISK,
                                        clients ? "base.img" : "disk.img");
      if (!img)
        return -ENOMEM;
      img->so = so;
      img->mpath = fv_data_path(m, so, 0);
      if (clients) {
        struct fv_node *cn = fv_node_new(f, ln, FV_CLIENTS, "clients");
        if (!cn)
          return -ENOMEM;
        cn->ceph = cow_in_ceph(so->h); /* "overlay_pool": no folder of files */
        if (!cn->ceph && !(cn->mpath = strdup(cow_overlay_dir(so->h))))
          return -ENOMEM;
        cn->so = so;
        cn->cow_readonly =
          json_is_true(json_object_get(fv_so_json(m, so->plugin, so->name), "readonly"));
      }
    }
  }
  return 0;
}

/* ---- clients ---- */

/* The node of the client whose overlay file is stem.cow in clients dir cn,
 * created on first sight (from the overlay's header).  NULL when the file is
 * not a client overlay of this LUN. */
static struct fv_node *fv_client_node(struct lg_fuse *f, struct fv_node *cn, const char *stem)
{
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < cn->n_kids; i++)
    if (!strcmp(cn->kids[i]->stem, stem)) {
      struct fv_node *n = cn->kids[i];
      pthread_mutex_unlock(&f->lock);
      return n;
    }
  pthread_mutex_unlock(&f->lock);

  char path[PATH_MAX], want[PATH_MAX];
  struct cow_info info;
  if (snprintf(path, sizeof path, "%s/%s.cow", cn->mpath, stem) >= (int)sizeof path ||
      cow_info_read(path, &info) < 0 || !info.client[0] || info.size != cn->so->size ||
      cow_overlay_path(cn->so->h, info.client, want, sizeof want) < 0 || strcmp(want, path))
    return NULL; /* not a client overlay of this LUN (the shared one, a stranger) */
  char *name = fv_name_escape(info.client, ".img");
  if (!name)
    return NULL;
  if (strlen(name) > 255) {
    lg_kv(LG_WARN, "fuse: initiator name too long for a file name; not shown",
          "storage=%s initiator=%s", LG_Q(cn->so->name), LG_Q(info.client));
    free(name);
    return NULL;
  }

  char *mpath = strdup(path), *initiator = strdup(info.client), *stem_copy = strdup(stem);
  struct fv_node *n = NULL;
  if (mpath && initiator && stem_copy) {
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < cn->n_kids && !n; i++) /* made meanwhile? */
      if (!strcmp(cn->kids[i]->stem, stem))
        n = cn->kids[i];
    if (!n && !fv_kid(cn, name) && (n = fv_node_new(f, cn, FV_CLIENT, name))) {
      n->so = cn->so;
      n->cow_readonly = cn->cow_readonly;
      n->mpath = mpath;
      n->initiator = initiator;
      n->stem = stem_copy;
      mpath = initiator = stem_copy = NULL;
    }
    pthread_mutex_unlock(&f->lock);
  }
  free(mpath);
  free(initiator);
  free(stem_copy);
  free(name);
  return n;
}

/* The node of the client (lower-cased) whose RBD clone a listing of the
 * pool shows, made on first sight: nothing is opened. */
static struct fv_node *fv_clone_node(struct lg_fuse *f, struct fv_node *cn, const char *client)
{
  char *name = fv_name_escape(client, ".img");
  if (!name)
    return NULL;
  if (strlen(name) > 255) {
    lg_kv(LG_WARN, "fuse: initiator name too long for a file name; not shown",
          "storage=%s initiator=%s", LG_Q(cn->so->name), LG_Q(client));
    free(name);
    return NULL;
  }
  char *initiator = strdup(client), *stem = strdup(client);
  struct fv_node *n = NULL;
  pthread_mutex_lock(&f->lock);
  if (initiator && stem && !(n = fv_kid(cn, name)) && (n = fv_node_new(f, cn, FV_CLIENT, name))) {
    n->so = cn->so;
    n->cow_readonly = cn->cow_readonly;
    n->ceph = true;
    n->initiator = initiator;
    n->stem = stem;
    initiator = stem = NULL;
  }
  pthread_mutex_unlock(&f->lock);
  free(initiator);
  free(stem);
  free(name);
  return n;
}

static int fv_clone_changed(struct fv_node *n, struct timespec *when)
{
  return cow_clone_changed(n->so->h, n->initiator, when);
}

/* Look a client up by file name (no directory scan). */
static struct fv_node *fv_client_lookup(struct lg_fuse *f, struct fv_node *cn, const char *name)
{
  pthread_mutex_lock(&f->lock);
  struct fv_node *n = fv_kid(cn, name);
  pthread_mutex_unlock(&f->lock);
  if (n)
    return n;
  char *initiator = fv_name_unescape(name, ".img");
  if (!initiator)
    return NULL;
  if (cn->ceph) { /* a clone's name has the initiator lower-cased: the one spelling */
    char *norm = strdup(initiator);
    struct timespec when;
    if (norm)
      cow_name_normalize(initiator, norm);
    if (norm && !strcmp(norm, initiator) && cow_clone_changed(cn->so->h, norm, &when) == 0)
      n = fv_clone_node(f, cn, norm);
    free(norm);
    free(initiator);
    return n;
  }
  char path[PATH_MAX];
  int r = cow_overlay_path(cn->so->h, initiator, path, sizeof path);
  free(initiator);
  if (r < 0)
    return NULL;
  char *stem = strrchr(path, '/');
  stem = stem ? stem + 1 : path;
  stem[strlen(stem) - 4] = '\0'; /* ".cow" */
  n = fv_client_node(f, cn, stem);
  return n && !strcmp(n->name, name) ? n : NULL; /* another spelling of that client */
}

/* Is a client's overlay in use by an iSCSI session now? */
static bool fv_client_live(struct lg_fuse *f, struct fv_node *n)
{
  return !f->offline && lg_overlay_is_live_by_name(n->so, n->initiator);
}

/* May this node be opened for writing now (view: its open view, if any)? */
static bool fv_can_write(struct lg_fuse *f, struct fv_node *n, struct lg_storage *view)
{
  if (!f->writable)
    return false;
  switch (n->kind) {
  case FV_DISK:
    return f->offline && !n->so->readonly && n->so->ops->pwrite;
  case FV_CLIENT:
    if (n->cow_readonly || (view && view->readonly))
      return false;
    return view ? f->offline || !lg_overlay_is_live(view) : !fv_client_live(f, n);
  default:
    return false;
  }
}

/* ---- attributes ---- */

static double fv_timeout(struct lg_fuse *f, struct fv_node *n)
{
  switch (n->kind) {
  case FV_CLIENTS:
  case FV_CLIENT:
    return FV_LIVE_TIMEOUT;
  case FV_DISK:
    return f->offline || n->so->readonly ? FV_STATIC_TIMEOUT : FV_LIVE_TIMEOUT;
  default:
    return FV_STATIC_TIMEOUT;
  }
}

static int fv_stat(struct lg_fuse *f, struct fv_node *n, struct stat *st)
{
  memset(st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_nlink = 1;
  st->st_blksize = 4096;
  st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = f->started;
  struct stat fs;
  bool have = n->mpath && stat(n->mpath, &fs) == 0;
  if (n->kind == FV_CLIENT && n->ceph) {
    struct timespec when;
    int r = fv_clone_changed(n, &when);
    if (r < 0)
      return r == -ENOENT ? r : -EIO; /* the clone was reset or removed */
    st->st_atim = st->st_mtim = st->st_ctim = when;
  } else if (n->kind == FV_CLIENT && !have) {
    return -ENOENT; /* the overlay was reset or removed */
  }
  if (have) {
    st->st_atim = fs.st_atim;
    st->st_mtim = fs.st_mtim;
    st->st_ctim = fs.st_ctim;
  }
  switch (n->kind) {
  case FV_DIR:
  case FV_CLIENTS:
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    if (n->kind == FV_DIR)
      for (size_t i = 0; i < n->n_kids; i++)
        st->st_nlink += n->kids[i]->kind == FV_DIR || n->kids[i]->kind == FV_CLIENTS;
    break;
  case FV_BASE:
  case FV_DISK:
  case FV_CLIENT:
    st->st_mode = S_IFREG | (fv_can_write(f, n, NULL) ? 0644 : 0444);
    st->st_size = (off_t)n->so->size;
    st->st_blocks = have && S_ISREG(fs.st_mode) ? fs.st_blocks : (blkcnt_t)(n->so->size / 512);
    break;
  }
  return 0;
}

static void fv_reply_entry(fuse_req_t req, struct lg_fuse *f, struct fv_node *n)
{
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  int r = fv_stat(f, n, &e.attr);
  if (r < 0) {
    fv_reply_err(req, r);
    return;
  }
  e.ino = n->ino;
  e.generation = 1;
  e.attr_timeout = e.entry_timeout = fv_timeout(f, n);
  fuse_reply_entry(req, &e);
}

/* ---- operations ---- */

static void fv_init(void *userdata, struct fuse_conn_info *conn)
{
  (void)userdata;
  conn->max_read = FV_MAX_IO;          /* = the max_read mount option */
  if (conn->max_write > FV_MAX_IO)
    conn->max_write = FV_MAX_IO;
  conn->max_background = 64;           /* readahead requests in flight */
  conn->congestion_threshold = 48;
  conn->want |= conn->capable & (FUSE_CAP_ASYNC_READ | FUSE_CAP_AUTO_INVAL_DATA);
  conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
                            FUSE_CAP_WRITEBACK_CACHE);
  conn->time_gran = 1;
}

static void fv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *p = fv_node_get(f, parent), *n = NULL;
  if (!p) {
    fv_reply_err(req, -ENOENT);
    return;
  }
  if (p->kind == FV_DIR)
    n = fv_kid(p, name);
  else if (p->kind == FV_CLIENTS)
    n = fv_client_lookup(f, p, name);
  else {
    fv_reply_err(req, -ENOTDIR);
    return;
  }
  if (!n) {
    fv_reply_err(req, -ENOENT);
    return;
  }
  fv_reply_entry(req, f, n);
}

static void fv_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)fi;
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *n = fv_node_get(f, ino);
  struct stat st;
  int r = n ? fv_stat(f, n, &st) : -ENOENT;
  if (r < 0)
    fv_reply_err(req, r);
  else
    fuse_reply_attr(req, &st, fv_timeout(f, n));
}

static void fv_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *n = fv_node_get(f, ino);
  struct fv_handle *h = fi ? (struct fv_handle *)(uintptr_t)fi->fh : NULL;
  if (!n) {
    fv_reply_err(req, -ENOENT);
    return;
  }
  if (!fv_can_write(f, n, h && h->view ? h->so : NULL)) {
    fv_reply_err(req, -EROFS);
    return;
  }
  /* a disk keeps its size and its owner; times follow its data */
  if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) ||
      ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != n->so->size)) {
    fv_reply_err(req, -EPERM);
    return;
  }
  fv_getattr(req, ino, fi);
}

static void fv_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *n = fv_node_get(f, ino);
  int r = 0;
  if (!n)
    r = -ENOENT;
  else if ((mask & W_OK) && !fv_can_write(f, n, NULL))
    r = -EROFS;
  else if ((mask & X_OK) && n->kind != FV_DIR && n->kind != FV_CLIENTS)
    r = -EACCES;
  fv_reply_err(req, r);
}

static void fv_handle_link(struct lg_fuse *f, struct fv_handle *h)
{
  pthread_mutex_lock(&f->lock);
  h->next = f->handles.next;
  h->prev = &f->handles;
  f->handles.next->prev = h;
  f->handles.next = h;
  pthread_mutex_unlock(&f->lock);
}

/* Unlink and free a handle, dropping its view.  Under no lock. */
static void fv_handle_free(struct lg_fuse *f, struct fv_handle *h)
{
  pthread_mutex_lock(&f->lock);
  h->prev->next = h->next;
  h->next->prev = h->prev;
  pthread_mutex_unlock(&f->lock);
  if (h->view)
    lg_overlay_put(h->so);
  for (size_t i = 0; i < h->n_ents; i++)
    free(h->ents[i].name);
  free(h->ents);
  free(h);
}

static void fv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *n = fv_node_get(f, ino);
  bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
  if (!n) {
    fv_reply_err(req, -ENOENT);
    return;
  }
  if (n->kind == FV_DIR || n->kind == FV_CLIENTS) {
    fv_reply_err(req, -EISDIR);
    return;
  }
  struct fv_handle *h = calloc(1, sizeof *h);
  if (!h) {
    fv_reply_err(req, -ENOMEM);
    return;
  }
  h->node = n;
  h->so = n->so;
  h->write = write;
  bool keep = true;
  if (n->kind == FV_CLIENT) {
    struct stat st;
    struct timespec when;
    if (n->ceph ? fv_clone_changed(n, &when) < 0 : stat(n->mpath, &st) < 0) {
      free(h); /* never create an overlay or a clone from here */
      fv_reply_err(req, -ENOENT);
      return;
    }
    char *why = NULL;
    h->so = lg_overlay_get(n->so, n->initiator, &why);
    if (!h->so) {
      lg_kv(LG_WARN, "fuse: cannot open a client's disk", "storage=%s client=%s err=%s",
            LG_Q(n->so->name), LG_Q(n->name), LG_Q(why ? why : "out of memory"));
      free(why);
      free(h);
      fv_reply_err(req, -EIO);
      return;
    }
    h->view = true;
    keep = f->offline || !lg_overlay_is_live(h->so);
  } else if (n->kind == FV_DISK) {
    keep = f->offline || n->so->readonly;
  }
  if (write && !fv_can_write(f, n, h->view ? h->so : NULL)) {
    if (h->view)
      lg_overlay_put(h->so);
    free(h);
    fv_reply_err(req, -EROFS);
    return;
  }
  fi->keep_cache = keep;
  fi->noflush = 1;
  fi->fh = (uintptr_t)h;
  fv_handle_link(f, h);
  if (fuse_reply_open(req, fi) == -ENOENT) /* the opener was interrupted */
    fv_handle_free(f, h);
}

static void fv_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  fv_handle_free(fuse_req_userdata(req), (struct fv_handle *)(uintptr_t)fi->fh);
  fv_reply_err(req, 0);
}

static void fv_buf_free(void *p)
{
  struct fv_buf *b = p;
  free(b->p);
  free(b);
}

/* This worker's buffer of at least n bytes. */
static void *fv_buf_get(struct lg_fuse *f, size_t n)
{
  struct fv_buf *b = pthread_getspecific(f->buf_key);
  if (!b) {
    if (!(b = calloc(1, sizeof *b)))
      return NULL;
    if (pthread_setspecific(f->buf_key, b)) {
      free(b);
      return NULL;
    }
  }
  if (b->cap < n) {
    size_t cap = (n + 65535) & ~(size_t)65535;
    void *p = aligned_alloc(4096, cap);
    if (!p)
      return NULL;
    free(b->p);
    b->p = p;
    b->cap = cap;
  }
  return b->p;
}

static void fv_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
  (void)ino;
  struct lg_fuse *f = fuse_req_userdata(req);
  struct lg_storage *so = ((struct fv_handle *)(uintptr_t)fi->fh)->so;
  if (off < 0 || (uint64_t)off >= so->size || size == 0) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t n = so->size - (uint64_t)off < size ? (size_t)(so->size - (uint64_t)off) : size;
  void *buf = fv_buf_get(f, n);
  int r = buf ? so->ops->pread(so->h, buf, n, (uint64_t)off) : -ENOMEM;
  if (r < 0)
    fv_reply_err(req, r);
  else
    fuse_reply_buf(req, buf, n);
}

static void fv_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
  (void)ino;
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_handle *h = (struct fv_handle *)(uintptr_t)fi->fh;
  struct lg_storage *so = h->so;
  if (!h->write || !fv_can_write(f, h->node, h->view ? so : NULL)) {
    fv_reply_err(req, -EROFS); /* e.g. the client logged in since the open */
    return;
  }
  if (size == 0) {
    fuse_reply_write(req, 0);
    return;
  }
  if (off < 0 || (uint64_t)off >= so->size) {
    fv_reply_err(req, -ENOSPC); /* a disk does not grow */
    return;
  }
  size_t n = so->size - (uint64_t)off < size ? (size_t)(so->size - (uint64_t)off) : size;
  int r = so->ops->pwrite(so->h, buf, n, (uint64_t)off, 0);
  if (r < 0)
    fv_reply_err(req, r);
  else
    fuse_reply_write(req, n);
}

static void fv_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  (void)ino;
  (void)datasync;
  struct fv_handle *h = (struct fv_handle *)(uintptr_t)fi->fh;
  int r = 0;
  if (h->write && h->so->ops->flush)
    r = h->so->ops->flush(h->so->h);
  fv_reply_err(req, r);
}

/* Directory entries, snapshot at opendir. */
static int fv_ents_add(struct fv_handle *h, size_t *cap, const char *name, fuse_ino_t ino,
                       mode_t type)
{
  if (h->n_ents == *cap) {
    size_t nc = *cap ? 2 * *cap : 16;
    struct fv_dirent *e = realloc(h->ents, nc * sizeof *e);
    if (!e)
      return -ENOMEM;
    h->ents = e;
    *cap = nc;
  }
  if (!(h->ents[h->n_ents].name = strdup(name)))
    return -ENOMEM;
  h->ents[h->n_ents].ino = ino;
  h->ents[h->n_ents++].type = type;
  return 0;
}

struct fv_clone_scan {
  struct lg_fuse *f;
  struct fv_node *cn;
  struct fv_handle *h;
  size_t *cap;
};

static int fv_scan_clone(const char *client, void *arg)
{
  struct fv_clone_scan *w = arg;
  struct fv_node *n = fv_clone_node(w->f, w->cn, client);
  return n ? fv_ents_add(w->h, w->cap, n->name, n->ino, S_IFREG) : 0;
}

static int fv_scan_clients(struct lg_fuse *f, struct fv_node *cn, struct fv_handle *h, size_t *cap)
{
  if (cn->ceph) { /* the pool's image list: no clone is opened */
    struct fv_clone_scan w = { f, cn, h, cap };
    int r = cow_clone_names(cn->so->h, fv_scan_clone, &w);
    return r < 0 ? r : 0;
  }
  DIR *d = opendir(cn->mpath);
  if (!d)
    return errno == ENOENT ? 0 : -errno;
  int r = 0;
  struct dirent *e;
  while (r == 0 && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".cow") || e->d_name[0] == '.')
      continue;
    char stem[NAME_MAX + 1];
    memcpy(stem, e->d_name, l - 4);
    stem[l - 4] = '\0';
    struct fv_node *n = fv_client_node(f, cn, stem);
    if (n)
      r = fv_ents_add(h, cap, n->name, n->ino, S_IFREG);
  }
  closedir(d);
  return r;
}

static void fv_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct lg_fuse *f = fuse_req_userdata(req);
  struct fv_node *n = fv_node_get(f, ino);
  if (!n || (n->kind != FV_DIR && n->kind != FV_CLIENTS)) {
    fv_reply_err(req, n ? -ENOTDIR : -ENOENT);
    return;
  }
  struct fv_handle *h = calloc(1, sizeof *h);
  size_t cap = 0;
  int r = h ? 0 : -ENOMEM;
  if (r == 0)
    r = fv_ents_add(h, &cap, ".", n->ino, S_IFDIR);
  if (r == 0)
    r = fv_ents_add(h, &cap, "..", n->parent->ino, S_IFDIR);
  if (r == 0 && n->kind == FV_DIR) {
    for (size_t i = 0; i < n->n_kids && r == 0; i++) {
      struct fv_node *k = n->kids[i];
      r = fv_ents_add(h, &cap, k->name, k->ino,
                      k->kind == FV_DIR || k->kind == FV_CLIENTS ? S_IFDIR : S_IFREG);
    }
  } else if (r == 0) {
    r = fv_scan_clients(f, n, h, &cap);
  }
  if (r < 0) {
    if (h) {
      for (size_t i = 0; i < h->n_ents; i++)
        free(h->ents[i].name);
      free(h->ents);
      free(h);
    }
    fv_reply_err(req, r);
    return;
  }
  h->node = n;
  fi->fh = (uintptr_t)h;
  fv_handle_link(f, h);
  if (fuse_reply_open(req, fi) == -ENOENT)
    fv_handle_free(f, h);
}

static void fv_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
  (void)ino;
  struct fv_handle *h = (struct fv_handle *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  if (!buf) {
    fv_reply_err(req, -ENOMEM);
    return;
  }
  size_t used = 0;
  for (size_t i = off < 0 ? 0 : (size_t)off; i < h->n_ents; i++) {
    struct stat st = { .st_ino = h->ents[i].ino, .st_mode = h->ents[i].type };
    size_t len = fuse_add_direntry(req, buf + used, size - used, h->ents[i].name, &st,
                                   (off_t)(i + 1));
    if (len > size - used)
      break;
    used += len;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
}

static void fv_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  fv_handle_free(fuse_req_userdata(req), (struct fv_handle *)(uintptr_t)fi->fh);
  fv_reply_err(req, 0);
}

static void fv_statfs(fuse_req_t req, fuse_ino_t ino)
{
  (void)ino;
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fv_ops = {
  .init = fv_init,
  .lookup = fv_lookup,
  .getattr = fv_getattr,
  .setattr = fv_setattr,
  .access = fv_access,
  .open = fv_open,
  .read = fv_read,
  .write = fv_write,
  .fsync = fv_fsync,
  .release = fv_release,
  .opendir = fv_opendir,
  .readdir = fv_readdir,
  .releasedir = fv_releasedir,
  .statfs = fv_statfs,
};

/* ---- mounting ---- */

static void fv_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t l = strlen(msg);
  while (l && msg[l - 1] == '\n')
    msg[--l] = '\0';
  lg_kv(level <= FUSE_LOG_ERR ? LG_ERROR : level == FUSE_LOG_WARNING ? LG_WARN
        : level <= FUSE_LOG_INFO ? LG_INFO : LG_DEBUG, "fuse: libfuse", "detail=%s", LG_Q(msg));
}

/* Run fusermount3 -u -z -q path (for a mount we may not umount2 ourselves). */
static int fv_fusermount_u(const char *path)
{
  char *argv[] = { "fusermount3", "-u", "-z", "-q", (char *)path, NULL };
  pid_t pid;
  int st;
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0)
    return -ENOENT;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Make mountpoint usable: unmount a stale FUSE mount a crashed process left
 * ("Transport endpoint is not connected"), create the directory if missing,
 * refuse one that a live FUSE file system is mounted on. */
static int fv_prepare_mountpoint(const char *mp, char **err)
{
  struct stat st;
  struct statfs sf;
  /* statfs always asks the file system (stat may answer from cached
   * attributes), so a dead connection shows here */
  for (int i = 0; i < 8 && statfs(mp, &sf) < 0 && errno == ENOTCONN; i++) {
    lg_kv(LG_WARN, "fuse: a stale FUSE mount (Transport endpoint is not connected), left by "
          "a process that ended without unmounting; unmounting it", "mountpoint=%s", LG_Q(mp));
    if (umount2(mp, MNT_DETACH) < 0 && fv_fusermount_u(mp) < 0) {
      if (asprintf(err, "mountpoint %s is a stale FUSE mount and cannot be unmounted; "
                   "run: fusermount3 -u -z %s", mp, mp) < 0)
        *err = NULL;
      return -1;
    }
  }
  if (stat(mp, &st) < 0) {
    int e = errno;
    if (e == ENOENT) {
      if (mkdir(mp, 0755) == 0) {
        lg_kv(LG_INFO, "fuse: created the mountpoint", "mountpoint=%s", LG_Q(mp));
        return 0;
      }
      e = errno;
      if (asprintf(err, "mountpoint %s does not exist and cannot be created (%s); create "
                   "it first", mp, strerror(e)) < 0)
        *err = NULL;
      return -1;
    }
    if (asprintf(err, "mountpoint %s: %s", mp, strerror(e)) < 0)
      *err = NULL;
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (asprintf(err, "mountpoint %s is not a directory", mp) < 0)
      *err = NULL;
    return -1;
  }
  char parent[PATH_MAX];
  struct stat pst;
  snprintf(parent, sizeof parent, "%s/..", mp);
  if (stat(parent, &pst) == 0 && pst.st_dev != st.st_dev && statfs(mp, &sf) == 0 &&
      sf.f_type == FV_FUSE_MAGIC) {
    if (asprintf(err, "%s already has a FUSE file system mounted (another lungate?); "
                 "unmount it first: fusermount3 -u %s", mp, mp) < 0)
      *err = NULL;
    return -1;
  }
  return 0;
}

/* Raise the mount's readahead (the kernel offers 128 KiB at INIT). */
static void fv_set_readahead(struct lg_fuse *f)
{
  struct stat st;
  char path[64];
  if (stat(f->mountpoint, &st) < 0)
    return;
  snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
           minor(st.st_dev));
  FILE *fp = fopen(path, "w");
  if (!fp) {
    lg_kv(LG_DEBUG, "fuse: readahead stays at the kernel's default", "path=%s err=%s",
          LG_Q(path), LG_Q(strerror(errno)));
    return;
  }
  fprintf(fp, "%u\n", FV_READAHEAD_KB);
  if (fclose(fp) != 0)
    lg_kv(LG_DEBUG, "fuse: readahead not set", "path=%s err=%s", LG_Q(path),
          LG_Q(strerror(errno)));
}

static void fv_free(struct lg_fuse *f)
{
  if (f->se)
    fuse_session_destroy(f->se);
  /* views and snapshots the kernel did not release */
  while (f->handles.next != &f->handles)
    fv_handle_free(f, f->handles.next);
  for (size_t i = 0; i < f->n_nodes; i++)
    fv_node_free(f->nodes[i]);
  free(f->nodes);
  if (f->buf_key_ok)
    pthread_key_delete(f->buf_key);
  if (f->done_efd >= 0)
    close(f->done_efd);
  pthread_mutex_destroy(&f->lock);
  free(f->mountpoint);
  free(f);
}

/* Build the tree and mount; no thread is started yet. */
static struct lg_fuse *fv_mount(struct lg_model *m, const char *mountpoint, bool writable,
                                bool offline, char **err)
{
  *err = NULL;
  struct lg_fuse *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  f->m = m;
  f->writable = writable;
  f->offline = offline;
  f->started = time(NULL);
  f->done_efd = -1;
  f->handles.next = f->handles.prev = &f->handles;
  pthread_mutex_init(&f->lock, NULL);
  fuse_set_log_func(fv_log);

  if (fv_prepare_mountpoint(mountpoint, err) < 0)
    goto fail;
  char abs[PATH_MAX];
  if (!realpath(mountpoint, abs) || !(f->mountpoint = strdup(abs))) {
    if (asprintf(err, "mountpoint %s: %s", mountpoint, strerror(errno)) < 0)
      *err = NULL;
    goto fail;
  }
  if (pthread_key_create(&f->buf_key, fv_buf_free) != 0)
    goto fail;
  f->buf_key_ok = true;
  if ((f->done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || fv_build_tree(f) < 0)
    goto fail;

  char opts[128];
  snprintf(opts, sizeof opts, "fsname=lungate,subtype=lungate,max_read=%u%s", FV_MAX_IO,
           writable ? "" : ",ro");
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  if (fuse_opt_add_arg(&args, "lungate") || fuse_opt_add_arg(&args, "-o") ||
      fuse_opt_add_arg(&args, opts)) {
    fuse_opt_free_args(&args);
    goto fail;
  }
  f->se = fuse_session_new(&args, &fv_ops, sizeof fv_ops, f);
  fuse_opt_free_args(&args);
  if (!f->se) {
    if (asprintf(err, "cannot start a FUSE session (see the messages above)") < 0)
      *err = NULL;
    goto fail;
  }
  if (fuse_session_mount(f->se, f->mountpoint) != 0) {
    if (asprintf(err, "cannot mount on %s (see the messages above; is /dev/fuse there, and "
                 "fuse3 installed?)", f->mountpoint) < 0)
      *err = NULL;
    goto fail;
  }
  f->mounted = true;
  return f;
fail:
  if (!*err && asprintf(err, "FUSE view on %s: out of memory", mountpoint) < 0)
    *err = NULL;
  fv_free(f);
  return NULL;
}

static void fv_free_fbuf(void *p)
{
  free(((struct fuse_buf *)p)->mem);
}

/* A worker: receive and process requests until the session ends.  It may
 * only be cancelled while it waits for a request. */
static void *fv_worker(void *arg)
{
  struct lg_fuse *f = arg;
  struct fuse_buf fbuf = { .mem = NULL };
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  pthread_cleanup_push(fv_free_fbuf, &fbuf);
  while (!fuse_session_exited(f->se)) {
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    int r = fuse_session_receive_buf(f->se, &fbuf);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    if (r == -EINTR || r == -EAGAIN)
      continue;
    if (r <= 0) { /* 0: unmounted (ENODEV) */
      if (r < 0)
        lg_kv(LG_ERROR, "fuse: reading requests failed", "mountpoint=%s err=%s",
              LG_Q(f->mountpoint), LG_Q(strerror(-r)));
      else if (!atomic_exchange(&f->unmounted_logged, true))
        lg_kv(LG_INFO, "fuse: the view was unmounted", "mountpoint=%s", LG_Q(f->mountpoint));
      fuse_session_exit(f->se);
      break;
    }
    fuse_session_process_buf(f->se, &fbuf);
  }
  uint64_t one = 1;
  if (write(f->done_efd, &one, sizeof one) < 0)
    lg_kv(LG_DEBUG, "fuse: eventfd write failed", "err=%s", LG_Q(strerror(errno)));
  pthread_cleanup_pop(1);
  return NULL;
}

/* Start the workers (all signals blocked in them). */
static int fv_run(struct lg_fuse *f, char **err)
{
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t n = cpus > 0 ? 2 * (size_t)cpus : 4;
  n = n < 4 ? 4 : n > FV_MAX_THREADS ? FV_MAX_THREADS : n;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (size_t i = 0; i < n; i++) {
    int r = pthread_create(&f->threads[i], NULL, fv_worker, f);
    if (r) {
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      if (asprintf(err, "FUSE view: cannot start a thread: %s", strerror(r)) < 0)
        *err = NULL;
      return -1;
    }
    f->n_threads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  fv_set_readahead(f);
  lg_kv(LG_INFO, "fuse: view mounted", "mountpoint=%s targets=%zu mode=%s",
        LG_Q(f->mountpoint), f->m->n_targets,
        f->writable ? "writable-without-session" : "read-only");
  return 0;
}

void lg_fuse_stop(struct lg_fuse *f)
{
  if (!f)
    return;
  fuse_session_exit(f->se);
  for (size_t i = 0; i < f->n_threads; i++)
    pthread_cancel(f->threads[i]);
  for (size_t i = 0; i < f->n_threads; i++)
    pthread_join(f->threads[i], NULL);
  f->n_threads = 0;
  if (f->mounted) {
    /* closes /dev/fuse (ending the requests of files still open), then
     * detaches the mount */
    fuse_session_unmount(f->se);
    f->mounted = false;
    lg_kv(LG_INFO, "fuse: unmounted", "mountpoint=%s", LG_Q(f->mountpoint));
  }
  fv_free(f);
}

struct lg_fuse *lg_fuse_start(struct lg_model *m, const char *mountpoint, bool writable,
                              char **err)
{
  struct lg_fuse *f = fv_mount(m, mountpoint, writable, false, err);
  if (f && fv_run(f, err) < 0) {
    lg_fuse_stop(f);
    return NULL;
  }
  return f;
}

/* ---- lungate mount ---- */

static void mount_usage(FILE *fp)
{
  fprintf(fp,
    "usage: lungate mount -c CONFIG MOUNTPOINT [--fuse-writable] [--foreground] [--log FILE] [-v]\n"
    "\n"
    "Shows every LUN of CONFIG as a file, with no gateway running:\n"
    "  MOUNTPOINT/<target>/<lun>/disk.img               a plain LUN\n"
    "  MOUNTPOINT/<target>/<lun>/base.img               a per-initiator LUN's base\n"
    "  MOUNTPOINT/<target>/<lun>/clients/<initiator>.img  each client's disk\n"
    "Read-only unless --fuse-writable (then clients' files and plain LUNs can be\n"
    "written; a client's writes go to its overlay, never to the base).  Without\n"
    "--foreground it returns once mounted and serves in the background, logging\n"
    "to FILE (default: $XDG_RUNTIME_DIR/lungate-mount.log, or\n"
    "/run/lungate/mount.log as root), never to the caller's terminal or pipe.\n"
    "Unmount with: fusermount3 -u MOUNTPOINT (or SIGTERM with --foreground).\n"
    "While a gateway runs, use its view instead: lungate serve ... --fuse MOUNTPOINT\n");
}

struct mount_busy_clone {
  void *h;
  char *busy;
};

static int mount_busy_clone(const char *client, void *arg)
{
  struct mount_busy_clone *w = arg;
  if (!cow_clone_live(w->h, client))
    return 0;
  if (asprintf(&w->busy, "(RBD clone) of %s", client) < 0)
    w->busy = NULL;
  return 1;
}

/* An overlay (or RBD clone) a running gateway holds open, or NULL. */
static char *mount_find_busy_overlay(struct lg_model *m)
{
  for (size_t i = 0; i < m->n_storage; i++) {
    struct lg_storage *so = m->storage[i];
    if (so->ops == &lg_cow_backstore && so->per_initiator && cow_in_ceph(so->h)) {
      /* a live gateway holds the clone's exclusive lock */
      struct mount_busy_clone w = { so->h, NULL };
      cow_clone_names(so->h, mount_busy_clone, &w);
      if (w.busy)
        return w.busy;
      continue;
    }
    if (so->ops != &lg_cow_backstore || !so->per_initiator || !cow_overlay_dir(so->h))
      continue;
    const char *dir = cow_overlay_dir(so->h);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      size_t l = strlen(e->d_name);
      char path[PATH_MAX];
      if (l < 5 || strcmp(e->d_name + l - 4, ".cow") ||
          snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
        continue;
      if (cow_in_use(path)) {
        closedir(d);
        return strdup(path);
      }
    }
    if (d)
      closedir(d);
  }
  return NULL;
}

/* Where the background mount logs when --log is not given; NULL: nowhere. */
static const char *mount_default_log(char *buf, size_t len)
{
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (geteuid() == 0) {
    if (mkdir("/run/lungate", 0700) < 0 && errno != EEXIST)
      return NULL;
    snprintf(buf, len, "/run/lungate/mount.log");
  } else if (xdg && *xdg == '/') {
    snprintf(buf, len, "%s/lungate-mount.log", xdg);
  } else {
    return NULL;
  }
  return buf;
}

/* Fork into the background: the parent exits 0 (the mount is up already).
 * The child keeps none of the caller's standard streams, so `lungate mount
 * ... 2>&1 | tee` and `$(lungate mount ...)` return: stdin and stdout are
 * /dev/null, stderr (the log) is logfd. */
static int mount_daemonize(int logfd)
{
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid > 0)
    _exit(0);
  setsid();
  if (chdir("/") < 0)
    return -errno;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(logfd >= 0 ? logfd : fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
      close(fd);
  }
  if (logfd > STDERR_FILENO)
    close(logfd);
  return 0;
}

int cmd_mount(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "fuse-writable", no_argument, NULL, 'W' },
    { "foreground", no_argument, NULL, 'f' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "log", required_argument, NULL, 'L' },
    { NULL, 0, NULL, 0 },
  };
  const char *config = NULL, *log_file = NULL;
  bool writable = false, foreground = false;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:fvh", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'W': writable = true; break;
    case 'f': foreground = true; break;
    case 'v': lg_log_set_level(LG_DEBUG); break;
    case 'L': log_file = optarg; break;
    case 'h': mount_usage(stdout); return 0;
    default: mount_usage(stderr); return 2;
    }
  }
  if (!config || optind != argc - 1) {
    fprintf(stderr, "lungate mount: %s\n",
            !config ? "give the configuration with -c CONFIG"
                    : optind >= argc ? "give the MOUNTPOINT" : "give one MOUNTPOINT");
    mount_usage(stderr);
    return 2;
  }
  const char *mp = argv[optind];

  /* SIGTERM, SIGINT and SIGHUP end the mount; taken through a signalfd */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  char *err = NULL;
  struct lg_model *m = lg_model_load_file(config, &err);
  if (!m) {
    fprintf(stderr, "lungate mount: %s\n", err ? err : "out of memory");
    if (err && strstr(err, "in use"))
      fprintf(stderr, "lungate mount: a running gateway holds these overlays; mount its view "
                      "instead: lungate serve -c %s --fuse %s\n", config, mp);
    free(err);
    return 1;
  }
  char *busy = mount_find_busy_overlay(m);
  if (busy) {
    fprintf(stderr, "lungate mount: overlay %s is in use by a running gateway; opening it "
                    "twice is refused.  Mount the gateway's own view instead: "
                    "lungate serve -c %s --fuse %s\n", busy, config, mp);
    free(busy);
    lg_model_unref(m);
    return 1;
  }

  struct lg_fuse *f = fv_mount(m, mp, writable, true, &err);
  if (!f) {
    fprintf(stderr, "lungate mount: %s\n", err ? err : "out of memory");
    free(err);
    lg_model_unref(m);
    return 1;
  }
  int rc = 0;
  if (!foreground) {
    char buf[PATH_MAX];
    const char *lp = log_file ? log_file : mount_default_log(buf, sizeof buf);
    int logfd = lp ? open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600) : -1;
    if (lp && logfd < 0) {
      fprintf(stderr, "lungate mount: --log %s: %s; give another file with --log FILE\n", lp,
              strerror(errno));
      rc = 1;
      goto out;
    }
    printf("lungate mount: %s is mounted; the background process logs to %s\n",
           f->mountpoint, lp ? lp : "/dev/null (no XDG_RUNTIME_DIR: give --log FILE)");
    int r = mount_daemonize(logfd);
    if (r < 0) {
      fprintf(stderr, "lungate mount: cannot go to the background: %s\n", strerror(-r));
      rc = 1;
      goto out;
    }
  }
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (sfd < 0 || fv_run(f, &err) < 0) {
    fprintf(stderr, "lungate mount: %s\n", err ? err : strerror(errno));
    free(err);
    if (sfd >= 0)
      close(sfd);
    rc = 1;
    goto out;
  }
  struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN }, { .fd = f->done_efd, .events = POLLIN } };
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      lg_kv(LG_ERROR, "lungate mount: poll failed", "err=%s", LG_Q(strerror(errno)));
      rc = 1;
      break;
    }
    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        lg_kv(LG_INFO, "fuse: unmounting on a signal", "signal=%s mountpoint=%s",
              LG_Q(strsignal((int)si.ssi_signo)), LG_Q(f->mountpoint));
      break;
    }
    if (pfd[1].revents & POLLIN) /* unmounted from outside (fusermount3 -u) */
      break;
  }
  close(sfd);
out:
  lg_fuse_stop(f);
  lg_model_unref(m);
  return rc;
}
