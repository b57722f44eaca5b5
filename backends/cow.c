/* cow backstore: a private writable layer over a read-only base.
 *
 * A cow storage object names another storage object as its "base" and keeps
 * what clients write in overlay files under "overlay_dir".  The base is opened
 * read-only and is never written.  With "per_initiator", the storage object
 * itself is a template (it reads as the base and refuses writes) and every
 * initiator gets its own overlay through ->open_client; without it, one
 * overlay ("shared.cow") serves the LUN.
 *
 * Overlay file (integers little-endian):
 *
 *   0      header, 4096 bytes, written once at creation: magic, version, the
 *          cow block size, the virtual size, the base's identity (its size and
 *          a SHA-256 over samples of its content), the client's name; CRC32C.
 *   4096   last-use record (time of the last session's end, live mark; CRC32C),
 *          and at 4160 the boot record (the ISIDs of the client's current
 *          boot, the fence mark; CRC32C).  Torn or missing, each is ignored.
 *   8192   the allocation map: one bit per cow block (1: the block's data is
 *          in this file; 0: read it from the base).  Page p of the map (510
 *          64-bit words = 32640 blocks) has two 4096-byte slots at
 *          8192 + p*8192 and +4096, each {u64 generation, u32 crc, u32 0,
 *          4080 bytes of bits}; the valid slot with the higher generation wins,
 *          so a torn map write leaves the previous flushed state.
 *   data   block i at data_offset + i * block_size; the file is sparse.
 *
 * Block states and locking: a block's bit goes 0 -> 1 when its first write
 * lands (copy-up), and 1 -> 0 on TRIM (the block reads from the base again:
 * UNMAP returns blocks to the base, not to zeroes).  Bits live in atomic
 * words.  A write to a block whose bit is 1 goes straight to the file.  A
 * write to a block whose bit is 0 takes the block's stripe lock, looks again,
 * and if still 0 reads the rest of the block from the base, writes the whole
 * block to the file and only then sets the bit, so a concurrent write to the
 * same block waits and then sees the block allocated.  Reads never lock: they
 * see the base until the bit is set, and the full block after.
 *
 * Ordering rule (crash safety): a bit reaches the disk only after the data
 * it points to.  Flush = (1) snapshot the dirty map pages, (2) fdatasync the
 * file, (3) write each snapshot to its older slot with generation+1,
 * (4) fdatasync.  Any bit in the snapshot was set after its block was written,
 * so step 2 made that block durable before step 3 persists the bit.  After a
 * completed SYNCHRONIZE CACHE or FUA write, its data and bits are on disk;
 * after a crash, an unflushed write is either wholly there (bit persisted by
 * a later flush) or reads as before (bit not persisted), never a block that
 * points at missing data.  TRIM punches a block's hole only after the cleared
 * bit has been flushed, under the stripe lock, and only if the bit is still 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <isa-l/crc64.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "backends/rbd.h"
#include "iscsi/pdu.h"          /* iscsi_crc32c */
#include "util/log.h"

#define COW_MAGIC "LGCOW\0v1"
#define COW_VERSION 1
#define HDR_SIZE 4096
#define LASTUSE_OFF 4096
#define BOOTREC_OFF 64            /* from LASTUSE_OFF */
#define BOOTREC_LEN 64            /* n, fenced, clean, pad, 8 ISIDs, last end, CRC32C */
#define MAP_OFF 8192
#define PAGE_SIZE_ 4096
#define PAGE_WORDS 510            /* 4080 bytes of bits per map page */
#define PAGE_BITS (PAGE_WORDS * 64)
#define STRIPES 64
#define BASE_ID_LEN COW_SUM_LEN

struct cow_page {
  uint64_t gen;                   /* generation of the newest valid slot */
  atomic_bool dirty;
};

/* One version of a per-initiator template's base ("versions" in its JSON;
 * without them, one implicit version 0: the base storage object itself).
 * A view holds a reference to the version it was made over; the template's
 * list holds one more, so a version dropped from the list (prune, a reload)
 * stays open until the last view over it closes.  Nothing is written to it. */
struct cow_ver {
  uint32_t id;                    /* 0: the base object itself */
  char *file;                     /* absolute path (NULL for id 0 and RBD snapshots) */
  char *spec;                     /* "overlay_pool": its snapshot, "POOL/IMAGE@SNAP" */
  uint8_t sum[BASE_ID_LEN];       /* its identity, as overlay headers record it */
  bool have_sum;
  const struct lg_backstore_ops *ops;
  void *h;                        /* NULL until first used */
  bool owned;                     /* h is ours to close */
  uint64_t size;
  uint32_t lbs;
  atomic_uint refs;
};

struct cow {
  struct cow *tmpl;               /* per-initiator view: its template */
  bool per_initiator;             /* template of per-initiator views */
  bool readonly;
  char *name;                     /* storage object name, for messages */
  const struct lg_backstore_ops *bops;
  void *bh;
  uint64_t size;                  /* virtual size = base size */
  uint32_t lbs;                   /* logical block size (the base's) */
  uint32_t block;                 /* cow block size */
  uint64_t quota;                 /* bytes per overlay, 0: none */
  char *dir;
  uint8_t base_id[BASE_ID_LEN];

  /* an open overlay (views and shared overlays) */
  int fd;
  char *path;
  char *client;
  uint64_t nblocks;
  _Atomic uint64_t *bits;
  atomic_uint_fast64_t allocated; /* blocks with bit 1 */
  struct cow_page *pages;
  uint64_t npages;
  uint64_t data_off;
  pthread_mutex_t stripes[STRIPES];
  pthread_mutex_t flush_lock;

  /* "overlay_pool": every client's layer is an RBD clone of the base
   * snapshot (backends/rbd.c), not a file */
  struct lg_rbd_clones *rbdt;     /* template: the clones' pool and names */
  void *rbdv;                     /* view: the client's clone (lg_rbd_backstore) */

  /* image versions: a template's list (under vlock) and the one new layers
   * are made over; a reload stages a new list and commits it (config.c) */
  pthread_mutex_t vlock;
  struct cow_ver **vv, *cur;
  size_t nv;
  bool keep_old;                  /* "on_new_version": "keep" */
  struct cow_ver **st_vv, *st_cur;
  size_t st_nv;
  bool st_keep, staged;
  json_t *base_def;               /* to open version files with the base's plugin */
  char *config_dir;
  struct cow_ver *ver;            /* a view: the version it is over (a reference) */
};

static void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_le32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_le64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t crc(const void *p, size_t n)
{
  return iscsi_crc32c_final(iscsi_crc32c(p, n, ISCSI_CRC32C_INIT));
}

/* ---- names ---- */

void cow_name_normalize(const char *name, char *out)
{
  for (; *name; name++)
    *out++ = (*name >= 'A' && *name <= 'Z') ? (char)(*name - 'A' + 'a') : *name;
  *out = '\0';
}

static bool name_char_ok(unsigned char ch, bool first)
{
  if (first && ch == '.')
    return false;
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
         ch == ':' || ch == '-' || ch == '_';
}

void cow_name_escape(const char *name, char *out)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = 0, len = strlen(name);
  char *norm = malloc(len + 1);
  if (!norm) {
    strcpy(out, "%00");
    return;
  }
  cow_name_normalize(name, norm);
  bool hashed = false;
  for (size_t i = 0; norm[i]; i++) {
    unsigned char ch = (unsigned char)norm[i];
    if (n + 3 > COW_NAME_MAX - 18) { /* room for "~" + 16 hex digits */
      hashed = true;
      break;
    }
    if (name_char_ok(ch, i == 0)) {
      out[n++] = (char)ch;
    } else {
      out[n++] = '%';
      out[n++] = hex[ch >> 4];
      out[n++] = hex[ch & 15];
    }
  }
  if (hashed) {
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, strlen(norm), (const uint8_t *)norm);
    sha256_digest(&ctx, sizeof d, d);
    out[n++] = '~';
    for (int i = 0; i < 8; i++) {
      out[n++] = hex[d[i] >> 4];
      out[n++] = hex[d[i] & 15];
    }
  }
  if (n == 0) { /* the empty name */
    strcpy(out, "%00");
    n = 3;
  }
  out[n] = '\0';
  free(norm);
}

int cow_name_unescape(const char *stem, char *out, size_t outlen)
{
  size_t n = 0;
  for (const char *p = stem; *p; p++) {
    if (n + 1 >= outlen || *p == '~')
      return -EINVAL;
    if (*p == '%') {
      unsigned v;
      if (sscanf(p + 1, "%2x", &v) != 1 || !p[1] || !p[2])
        return -EINVAL;
      out[n++] = (char)v;
      p += 2;
    } else {
      out[n++] = *p;
    }
  }
  out[n] = '\0';
  return 0;
}

/* ---- base identity ---- */

/* The base's identity: its size and a CRC-64 and CRC32C of its whole content
 * (ISA-L, several GB/s), so any change to the base, a commit that replaced
 * it among them, is told apart.  A guard against mistakes, not against an
 * adversary who can write the base. */
static int base_identity(const struct lg_backstore_ops *ops, void *h, uint64_t size,
                         uint8_t id[BASE_ID_LEN])
{
  size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  if (!buf)
    return -ENOMEM;
  uint64_t c64 = 0;
  uint32_t c32 = ISCSI_CRC32C_INIT;
  int r = 0;
  for (uint64_t off = 0; off < size && r == 0; off += chunk) {
    size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
    r = ops->pread(h, buf, n, off);
    c64 = crc64_ecma_refl(c64, buf, n);
    c32 = iscsi_crc32c(buf, n, c32);
  }
  memset(id, 0, BASE_ID_LEN);
  put_le64(id, size);
  put_le64(id + 8, c64);
  put_le32(id + 16, iscsi_crc32c_final(c32));
  free(buf);
  return r;
}

/* ---- image versions ---- */

static void ver_put(struct cow_ver *v)
{
  if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
    return;
  if (v->owned && v->h)
    v->ops->close(v->h);
  free(v->file);
  free(v->spec);
  free(v);
}

static struct cow_ver *ver_ref(struct cow_ver *v)
{
  if (v)
    atomic_fetch_add(&v->refs, 1);
  return v;
}

static void ver_list_free(struct cow_ver **vv, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ver_put(vv[i]);
  free(vv);
}

void cow_sum_hex(const uint8_t sum[COW_SUM_LEN], char out[2 * COW_SUM_LEN + 1])
{
  for (int i = 0; i < COW_SUM_LEN; i++)
    snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

static bool sum_parse(const char *hex, uint8_t sum[BASE_ID_LEN])
{
  if (!hex || strlen(hex) != 2 * BASE_ID_LEN)
    return false;
  for (int i = 0; i < BASE_ID_LEN; i++) {
    unsigned x;
    if (sscanf(hex + 2 * i, "%2x", &x) != 1)
      return false;
    sum[i] = (uint8_t)x;
  }
  return true;
}

void cow_spec_sum(const char *spec, uint8_t sum[COW_SUM_LEN])
{
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, 4, (const uint8_t *)"rbd:");
  sha256_update(&ctx, strlen(spec), (const uint8_t *)spec);
  sha256_digest(&ctx, COW_SUM_LEN, sum);
}

/* Open a version file with the base's plugin, read-only: the base object's
 * definition with "dev" replaced.  Under t->vlock (or before t is shared). */
static int ver_open(struct cow *t, struct cow_ver *v)
{
  if (v->h)
    return 0;
  if (v->spec) { /* an RBD snapshot: clones are made of it, it is never opened here */
    char err[1400];
    if (v->size || lg_rbd_snap_probe(t->rbdt, v->spec, &v->size, err, sizeof err) == 0)
      return 0;
    lg_set_error("cow \"%s\": version %u: %s", t->name, v->id, err);
    return -1;
  }
  if (!t->base_def) {
    lg_set_error("cow \"%s\": versions need a base storage object with a \"dev\"", t->name);
    return -1;
  }
  json_t *def = json_deep_copy(t->base_def);
  char name[300];
  snprintf(name, sizeof name, "%s@v%u", t->name, v->id);
  if (!def || json_object_set_new(def, "dev", json_string(v->file)) < 0) {
    json_decref(def);
    lg_set_error("cow \"%s\": out of memory", t->name);
    return -1;
  }
  json_object_del(def, "size");
  json_object_del(def, "wwn");
  struct lg_bs_open_args a = { .name = name, .readonly = true, .config_dir = t->config_dir };
  v->ops = t->bops;
  v->h = t->bops->open(def, &a);
  json_decref(def);
  if (!v->h)
    return -1;
  v->owned = true;
  v->size = v->ops->size(v->h);
  v->lbs = v->ops->block_size(v->h);
  if (v->lbs != t->lbs) {
    lg_set_error("cow \"%s\": version %u (%s) has %u-byte blocks, the base %u", t->name, v->id,
                 v->file, v->lbs, t->lbs);
    v->ops->close(v->h);
    v->h = NULL;
    return -1;
  }
  if (!v->have_sum) {
    uint8_t sum[BASE_ID_LEN];
    int r = base_identity(v->ops, v->h, v->size, sum);
    if (r < 0) {
      lg_set_error("cow \"%s\": reading version %u (%s): %s", t->name, v->id, v->file,
                   strerror(-r));
      v->ops->close(v->h);
      v->h = NULL;
      return -1;
    }
    memcpy(v->sum, sum, BASE_ID_LEN);
    v->have_sum = true;
  }
  return 0;
}

/* Parse "versions", "current" and "on_new_version" of a cow object into a
 * new list, reusing t's entries with the same id and file; the current
 * version is opened.  -1 with lg_set_error. */
static int versions_parse(struct cow *t, const json_t *so, struct cow_ver ***out_vv,
                          size_t *out_nv, struct cow_ver **out_cur, bool *out_keep)
{
  json_t *vers = json_object_get(so, "versions"), *cur = json_object_get(so, "current");
  json_t *pol = json_object_get(so, "on_new_version");
  *out_vv = NULL;
  *out_nv = 0;
  *out_cur = NULL;
  *out_keep = false;
  if (pol && !(json_is_string(pol) && (!strcmp(json_string_value(pol), "reset") ||
                                       !strcmp(json_string_value(pol), "keep")))) {
    lg_set_error("storage object \"%s\": key \"on_new_version\" must be \"reset\" (the "
                 "default) or \"keep\"", t->name);
    return -1;
  }
  *out_keep = pol && !strcmp(json_string_value(pol), "keep");
  if (!vers) {
    if (cur) {
      lg_set_error("storage object \"%s\": key \"current\" without \"versions\"", t->name);
      return -1;
    }
    return 0;
  }
  if (!json_is_array(vers) || !json_array_size(vers)) {
    lg_set_error("storage object \"%s\": key \"versions\" must be a list of versions "
                 "({\"id\": N, \"file\": PATH, ...})", t->name);
    return -1;
  }
  if (!t->per_initiator) {
    lg_set_error("storage object \"%s\": \"versions\" need \"per_initiator\": true", t->name);
    return -1;
  }
  size_t n = json_array_size(vers), i;
  struct cow_ver **vv = calloc(n, sizeof *vv);
  json_int_t want = json_is_integer(cur) ? json_integer_value(cur) : -1;
  json_t *e;
  if (!vv) {
    lg_set_error("storage object \"%s\": out of memory", t->name);
    return -1;
  }
  json_array_foreach(vers, i, e) {
    json_t *idj = json_object_get(e, "id");
    const char *file = json_string_value(json_object_get(e, "file"));
    const char *sum = json_string_value(json_object_get(e, "sum"));
    char path[PATH_MAX];
    if (t->rbdt) { /* per-client clones: a version is an RBD snapshot */
      const char *image = json_string_value(json_object_get(e, "image"));
      if (!json_is_integer(idj) || json_integer_value(idj) < 1 ||
          json_integer_value(idj) > UINT32_MAX || !image || strncmp(image, "rbd:", 4) ||
          !strchr(image, '@') || strlen(image) >= sizeof path) {
        lg_set_error("storage object \"%s\": versions[%zu]: needs \"id\" (a number from 1) "
                     "and \"image\" (\"rbd:POOL/IMAGE@SNAPSHOT\")", t->name, i);
        goto err;
      }
      snprintf(path, sizeof path, "%s", image + 4);
      file = NULL;
      sum = NULL;
    } else if (!json_is_integer(idj) || json_integer_value(idj) < 1 ||
        json_integer_value(idj) > UINT32_MAX || !file || !*file ||
        lg_resolve_path(path, sizeof path, t->config_dir, file) < 0 ||
        (sum && !sum_parse(sum, (uint8_t[BASE_ID_LEN]){ 0 }))) {
      lg_set_error("storage object \"%s\": versions[%zu]: needs \"id\" (a number from 1), "
                   "\"file\" (a path) and, if given, \"sum\" (%d hex digits)", t->name, i,
                   2 * BASE_ID_LEN);
      goto err;
    }
    uint32_t id = (uint32_t)json_integer_value(idj);
    for (size_t k = 0; k < i; k++)
      if (vv[k]->id == id || !strcmp(vv[k]->file ? vv[k]->file : vv[k]->spec, path)) {
        lg_set_error("storage object \"%s\": versions[%zu]: id %u or file %s is used twice",
                     t->name, i, id, path);
        goto err;
      }
    for (size_t k = 0; k < t->nv && !vv[i]; k++)
      if (t->vv[k]->id == id && (t->rbdt ? t->vv[k]->spec : t->vv[k]->file) &&
          !strcmp(t->rbdt ? t->vv[k]->spec : t->vv[k]->file, path))
        vv[i] = ver_ref(t->vv[k]);
    if (!vv[i]) {
      struct cow_ver *v = calloc(1, sizeof *v);
      if (!v || !(*(t->rbdt ? &v->spec : &v->file) = strdup(path))) {
        free(v);
        lg_set_error("storage object \"%s\": out of memory", t->name);
        goto err;
      }
      v->id = id;
      v->have_sum = sum && sum_parse(sum, v->sum);
      if (v->spec) { /* its identity: the snapshot's name (a clone's parent names it) */
        cow_spec_sum(v->spec, v->sum);
        v->have_sum = true;
      }
      atomic_init(&v->refs, 1);
      vv[i] = v;
    }
    if ((json_int_t)id == want || (want < 0 && (!*out_cur || id > (*out_cur)->id)))
      *out_cur = vv[i];
  }
  if (!*out_cur) {
    lg_set_error("storage object \"%s\": key \"current\" must be the id of one of its "
                 "\"versions\"", t->name);
    goto err;
  }
  *out_vv = vv;
  *out_nv = n;
  return 0;
err:
  for (i = 0; i < n; i++)
    if (vv[i])
      ver_put(vv[i]);
  free(vv);
  *out_cur = NULL;
  return -1;
}

/* The implicit version 0 (no "versions"): the base object itself. */
static int versions_implicit(struct cow *t)
{
  struct cow_ver *v = calloc(1, sizeof *v);
  t->vv = calloc(1, sizeof *t->vv);
  if (!v || !t->vv) {
    free(v);
    lg_set_error("storage object \"%s\": out of memory", t->name);
    return -1;
  }
  atomic_init(&v->refs, 1);
  v->ops = t->bops;
  v->h = t->bh;
  v->size = t->size;
  v->lbs = t->lbs;
  int r = base_identity(t->bops, t->bh, t->size, v->sum);
  if (r < 0) {
    free(v);
    lg_set_error("storage object \"%s\": reading the base: %s", t->name, strerror(-r));
    return -1;
  }
  v->have_sum = true;
  t->vv[0] = t->cur = v;
  t->nv = 1;
  return 0;
}

/* The current version, referenced (release with ver_put). */
static struct cow_ver *cur_get(struct cow *t)
{
  pthread_mutex_lock(&t->vlock);
  struct cow_ver *v = ver_ref(t->cur);
  pthread_mutex_unlock(&t->vlock);
  return v;
}

/* The version whose identity is sum (the current one first), opened and
 * referenced; NULL with lg_set_error. */
static struct cow_ver *ver_by_sum(struct cow *t, const uint8_t *sum)
{
  struct cow_ver *v = NULL;
  pthread_mutex_lock(&t->vlock);
  if (t->cur && t->cur->have_sum && !memcmp(t->cur->sum, sum, BASE_ID_LEN))
    v = t->cur;
  for (size_t i = 0; !v && i < t->nv; i++)
    if (t->vv[i]->have_sum && !memcmp(t->vv[i]->sum, sum, BASE_ID_LEN))
      v = t->vv[i];
  if (v && ver_open(t, v) < 0)
    v = NULL;
  else if (!v)
    lg_set_error("no version of the base has this overlay's identity");
  ver_ref(v);
  pthread_mutex_unlock(&t->vlock);
  return v;
}

/* ---- open and create overlay files ---- */

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static void overlay_layout(struct cow *c)
{
  c->nblocks = div_up(c->size, c->block);
  c->npages = div_up(c->nblocks, PAGE_BITS);
  uint64_t map_end = MAP_OFF + c->npages * 2 * PAGE_SIZE_;
  c->data_off = div_up(map_end, c->block) * c->block;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off)
{
  const char *p = buf;
  while (n > 0) {
    ssize_t r = pwrite(fd, p, n, (off_t)off);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static void header_encode(const struct cow *c, uint8_t *h, const char *client)
{
  memset(h, 0, HDR_SIZE);
  memcpy(h, COW_MAGIC, 8);
  put_le32(h + 8, COW_VERSION);
  put_le32(h + 12, c->block);
  put_le64(h + 16, c->size);
  put_le64(h + 24, c->size);          /* base size */
  memcpy(h + 32, c->base_id, BASE_ID_LEN);
  put_le64(h + 64, (uint64_t)time(NULL));
  put_le64(h + 80, MAP_OFF);
  put_le64(h + 88, c->npages);
  put_le64(h + 96, c->data_off);
  size_t cl = client ? strlen(client) : 0;
  if (cl > 255)
    cl = 255;
  put_le32(h + 104, (uint32_t)cl);
  if (cl)
    memcpy(h + 108, client, cl);
  put_le32(h + HDR_SIZE - 4, crc(h, HDR_SIZE - 4));
}

static int header_check(const uint8_t *h)
{
  if (memcmp(h, COW_MAGIC, 8) || get_le32(h + HDR_SIZE - 4) != crc(h, HDR_SIZE - 4))
    return -EINVAL;
  if (get_le32(h + 8) != COW_VERSION)
    return -EPROTO;
  return 0;
}

/* Load the map: for each page the valid slot with the higher generation. */
static int map_load(struct cow *c)
{
  uint8_t *slot = malloc(PAGE_SIZE_);
  if (!slot)
    return -ENOMEM;
  int r = 0;
  for (uint64_t p = 0; p < c->npages && r == 0; p++) {
    uint64_t best_gen = 0;
    bool found = false;
    for (int s = 0; s < 2; s++) {
      r = lg_pread_full(c->fd, slot, PAGE_SIZE_, MAP_OFF + (p * 2 + (uint64_t)s) * PAGE_SIZE_,
                        false);
      if (r < 0)
        break;
      uint64_t gen = get_le64(slot);
      if (gen == 0 || get_le32(slot + 8) != (crc(slot + 16, PAGE_SIZE_ - 16) ^ (uint32_t)gen))
        continue;
      if (found && gen <= best_gen)
        continue;
      found = true;
      best_gen = gen;
      for (unsigned w = 0; w < PAGE_WORDS; w++) {
        uint64_t idx = p * PAGE_WORDS + w;
        if (idx * 64 >= c->nblocks)
          break;
        atomic_store(&c->bits[idx], get_le64(slot + 16 + 8 * w));
      }
    }
    c->pages[p].gen = best_gen;
  }
  free(slot);
  uint64_t n = 0;
  for (uint64_t w = 0; w < div_up(c->nblocks, 64); w++)
    n += (uint64_t)__builtin_popcountll(atomic_load(&c->bits[w]));
  atomic_store(&c->allocated, n);
  return r;
}

static void overlay_free(struct cow *c)
{
  if (c->rbdv)
    lg_rbd_backstore.close(c->rbdv);
  lg_rbd_clones_close(c->rbdt);
  if (c->fd >= 0)
    close(c->fd);
  free(c->bits);
  free(c->pages);
  free(c->path);
  free(c->client);
  free(c->name);
  free(c->dir);
  for (int i = 0; i < STRIPES; i++)
    pthread_mutex_destroy(&c->stripes[i]);
  pthread_mutex_destroy(&c->flush_lock);
  ver_put(c->ver);
  ver_list_free(c->vv, c->nv);
  ver_list_free(c->st_vv, c->st_nv);
  pthread_mutex_destroy(&c->vlock);
  json_decref(c->base_def);
  free(c->config_dir);
  free(c);
}

static struct cow *cow_alloc(void)
{
  struct cow *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->fd = -1;
  for (int i = 0; i < STRIPES; i++)
    pthread_mutex_init(&c->stripes[i], NULL);
  pthread_mutex_init(&c->flush_lock, NULL);
  pthread_mutex_init(&c->vlock, NULL);
  return c;
}

int cow_overlay_path(void *hv, const char *client, char *out, size_t len)
{
  struct cow *t = hv;
  char stem[COW_NAME_MAX + 1];
  if (!t->dir)
    return -EOPNOTSUPP; /* "overlay_pool": clients' disks are RBD clones */
  if (client)
    cow_name_escape(client, stem);
  int n = snprintf(out, len, "%s/%s.cow", t->dir, client ? stem : "shared");
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Open (or create) the overlay file of client (NULL: shared) over t's base. */
static struct cow *overlay_open(struct cow *t, const char *client)
{
  struct cow *c = cow_alloc();
  char path[PATH_MAX];
  uint8_t *hdr = NULL;
  if (!c)
    goto oom;
  c->tmpl = t;
  c->bops = t->bops;
  c->bh = t->bh;
  c->size = t->size;
  c->lbs = t->lbs;
  c->quota = t->quota;
  c->readonly = t->readonly;
  c->name = strdup(t->name);
  c->client = client ? strdup(client) : NULL;
  if (cow_overlay_path(t, client, path, sizeof path) < 0) {
    lg_set_error("cow \"%s\": overlay path too long in \"%s\"", t->name, t->dir);
    goto err;
  }
  c->path = strdup(path);
  hdr = malloc(HDR_SIZE);
  if (!c->name || !c->path || !hdr || (client && !c->client))
    goto oom;

  bool created = false;
  c->fd = open(path, (c->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
  if (c->fd < 0 && errno == ENOENT && !c->readonly) {
    c->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    created = c->fd >= 0;
  }
  if (c->fd < 0) {
    lg_set_error("cow \"%s\": cannot open overlay \"%s\": %s", t->name, path, strerror(errno));
    goto err;
  }
  if (flock(c->fd, (c->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
    lg_set_error("cow \"%s\": overlay \"%s\" is in use by another lungate process "
                 "(a running gateway?); use its control commands, or stop it first",
                 t->name, path);
    goto err;
  }
  if (created) { /* a new layer is made over the current version */
    pthread_mutex_lock(&t->vlock);
    c->ver = ver_ref(t->cur);
    int vr = c->ver ? ver_open(t, c->ver) : -1; /* (open already: at load or stage) */
    pthread_mutex_unlock(&t->vlock);
    if (vr < 0) {
      lg_set_error("cow \"%s\": %s", t->name, lg_get_error());
      unlink(path);
      goto err;
    }
    c->bh = c->ver->h;
    c->size = c->ver->size;
    memcpy(c->base_id, c->ver->sum, BASE_ID_LEN);
    c->block = t->block;
    overlay_layout(c);
    header_encode(c, hdr, client);
    int r = write_full(c->fd, hdr, HDR_SIZE, 0);
    if (r == 0 && ftruncate(c->fd, (off_t)(c->data_off + c->size)) < 0)
      r = -errno;
    if (r == 0 && fsync(c->fd) < 0)
      r = -errno;
    if (r == 0) { /* make the new name durable too */
      int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
      }
    }
    if (r < 0) {
      lg_set_error("cow \"%s\": cannot create overlay \"%s\": %s", t->name, path, strerror(-r));
      unlink(path);
      goto err;
    }
  } else {
    int r = lg_pread_full(c->fd, hdr, HDR_SIZE, 0, false);
    if (r == 0)
      r = header_check(hdr);
    if (r < 0) {
      lg_set_error("cow \"%s\": \"%s\" is not a lungate overlay or is damaged (%s); "
                   "move it away or reset the overlay", t->name, path,
                   r == -EPROTO ? "unknown version" : r == -EINVAL ? "bad header" : strerror(-r));
      goto err;
    }
    c->block = get_le32(hdr + 12);
    uint64_t vsize = get_le64(hdr + 16), bsize = get_le64(hdr + 24);
    /* the version it was made over, by the identity its header records */
    if ((c->ver = ver_by_sum(t, hdr + 32))) {
      c->bh = c->ver->h;
      c->size = c->ver->size;
      memcpy(c->base_id, c->ver->sum, BASE_ID_LEN);
    }
    if (!c->ver || bsize != c->size || vsize != c->size) {
      lg_set_error("cow \"%s\": overlay \"%s\" was made over a different base (size %llu, "
                   "now %llu%s); it would show garbage.  Restore the old base, or reset "
                   "this overlay (lungate overlay reset)", t->name, path,
                   (unsigned long long)bsize, (unsigned long long)t->size,
                   bsize == t->size ? ", content differs" : "");
      goto err;
    }
    if (c->block < 4096 || (c->block & (c->block - 1)) || c->block % c->lbs) {
      lg_set_error("cow \"%s\": overlay \"%s\" has an invalid block size %u", t->name,
                   path, c->block);
      goto err;
    }
    overlay_layout(c);
    if (get_le64(hdr + 96) != c->data_off || get_le64(hdr + 88) != c->npages) {
      lg_set_error("cow \"%s\": overlay \"%s\" has an inconsistent header", t->name, path);
      goto err;
    }
  }
  c->bits = calloc(div_up(c->nblocks, 64) + 1, sizeof *c->bits);
  c->pages = calloc(c->npages + 1, sizeof *c->pages);
  if (!c->bits || !c->pages)
    goto oom;
  int r = map_load(c);
  if (r < 0) {
    lg_set_error("cow \"%s\": reading the map of \"%s\": %s", t->name, path, strerror(-r));
    goto err;
  }
  free(hdr);
  return c;
oom:
  lg_set_error("cow: out of memory");
err:
  free(hdr);
  if (c)
    overlay_free(c);
  return NULL;
}

/* ---- backstore ops ---- */

/* A cow object with "overlay_pool": per-client RBD clones of an rbd base
 * snapshot; the template reads as the base. */
static void *cow_rbd_open(const json_t *so, const struct lg_bs_open_args *args, const char *pool)
{
  if (args->base_ops != &lg_rbd_backstore) {
    lg_set_error("storage object \"%s\": \"overlay_pool\" needs a base that is an \"rbd\" "
                 "storage object with a \"snapshot\"", args->name);
    return NULL;
  }
  if (!json_is_true(json_object_get(so, "per_initiator"))) {
    lg_set_error("storage object \"%s\": \"overlay_pool\" gives every initiator its own "
                 "RBD clone: set \"per_initiator\": true (one shared clone is not supported; "
                 "use an rbd object)", args->name);
    return NULL;
  }
  if (json_object_get(so, "overlay_dir")) {
    lg_set_error("storage object \"%s\": give \"overlay_pool\" or \"overlay_dir\", not both",
                 args->name);
    return NULL;
  }
  uint64_t quota = 0;
  if (lg_json_get_u64(so, "quota", &quota) < 0) {
    lg_set_error("storage object \"%s\": key \"quota\" must be a number of bytes", args->name);
    return NULL;
  }
  struct cow *t = cow_alloc();
  if (!t || !(t->name = strdup(args->name))) {
    lg_set_error("storage object \"%s\": out of memory", args->name);
    goto err;
  }
  t->bops = args->base_ops;
  t->bh = args->base_h;
  t->size = args->base_ops->size(args->base_h);
  t->lbs = args->base_ops->block_size(args->base_h);
  t->block = COW_DEFAULT_BLOCK;
  t->quota = quota;
  t->readonly = args->readonly || json_is_true(json_object_get(so, "readonly"));
  t->per_initiator = true;
  if (!(t->rbdt = lg_rbd_clones_open(args->base_h, args->name, pool)))
    goto err;
  /* image versions: RBD snapshots; new clones are made of the current one */
  if (versions_parse(t, so, &t->vv, &t->nv, &t->cur, &t->keep_old) < 0)
    goto err;
  if (t->cur && ver_open(t, t->cur) < 0)
    goto err;
  return t;
err:
  if (t)
    overlay_free(t);
  return NULL;
}

static void *cow_open(const json_t *so, const struct lg_bs_open_args *args)
{
  if (!args->base_ops) {
    lg_set_error("storage object \"%s\": key \"base\" must name another storage object "
                 "as \"/backstores/<plugin>/<name>\"", args->name);
    return NULL;
  }
  const char *pool = json_string_value(json_object_get(so, "overlay_pool"));
  if (pool && *pool)
    return cow_rbd_open(so, args, pool);
  const char *dir = json_string_value(json_object_get(so, "overlay_dir"));
  if (!dir || !*dir) {
    lg_set_error("storage object \"%s\": key \"overlay_dir\" is missing; give the "
                 "directory where client overlays are kept", args->name);
    return NULL;
  }
  uint64_t quota = 0, block = COW_DEFAULT_BLOCK;
  if (lg_json_get_u64(so, "quota", &quota) < 0) {
    lg_set_error("storage object \"%s\": key \"quota\" must be a number of bytes", args->name);
    return NULL;
  }
  if (lg_json_get_u64(so, "block_size", &block) < 0 || block < 4096 || block > (1u << 22) ||
      (block & (block - 1))) {
    lg_set_error("storage object \"%s\": key \"block_size\" must be a power of two from "
                 "4096 to 4194304", args->name);
    return NULL;
  }
  struct cow *t = cow_alloc();
  char path[PATH_MAX];
  if (!t)
    return NULL;
  t->name = strdup(args->name);
  t->bops = args->base_ops;
  t->bh = args->base_h;
  t->size = args->base_ops->size(args->base_h);
  t->lbs = args->base_ops->block_size(args->base_h);
  t->block = (uint32_t)block;
  t->quota = quota;
  t->readonly = args->readonly || json_is_true(json_object_get(so, "readonly"));
  t->per_initiator = json_is_true(json_object_get(so, "per_initiator"));
  if (lg_resolve_path(path, sizeof path, args->config_dir, dir) < 0 || !(t->dir = strdup(path))) {
    lg_set_error("storage object \"%s\": overlay_dir too long", args->name);
    goto err;
  }
  if (mkdir(t->dir, 0700) < 0 && errno != EEXIST) {
    lg_set_error("storage object \"%s\": cannot create overlay_dir \"%s\": %s", args->name,
                 t->dir, strerror(errno));
    goto err;
  }
  struct stat st;
  if (stat(t->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    lg_set_error("storage object \"%s\": overlay_dir \"%s\" is not a directory", args->name, t->dir);
    goto err;
  }
  if (args->base_def && !(t->base_def = json_deep_copy(args->base_def)))
    goto err;
  if (args->config_dir && !(t->config_dir = strdup(args->config_dir)))
    goto err;
  /* its versions, or the base itself as the one version */
  struct cow_ver **vv, *cur;
  size_t nv;
  if (versions_parse(t, so, &vv, &nv, &cur, &t->keep_old) < 0)
    goto err;
  if (!vv) {
    if (versions_implicit(t) < 0)
      goto err;
  } else {
    t->vv = vv;
    t->nv = nv;
    t->cur = cur;
    /* the current version's content is checked at every start, as the base's
     * was: a version file changed by hand must not reach a client */
    uint8_t want[BASE_ID_LEN];
    bool recorded = cur->have_sum;
    memcpy(want, cur->sum, BASE_ID_LEN);
    cur->have_sum = false;
    if (ver_open(t, cur) < 0)
      goto err;
    if (recorded && memcmp(want, cur->sum, BASE_ID_LEN)) {
      lg_set_error("storage object \"%s\": version %u (%s) is not what was published (its "
                   "content changed); restore the file, or roll back to another version",
                   args->name, cur->id, cur->file);
      goto err;
    }
    t->size = cur->size;
  }
  if (t->per_initiator)
    return t;
  /* one shared overlay: the handle is that overlay */
  struct cow *c = overlay_open(t, NULL);
  if (!c)
    goto err;
  c->tmpl = NULL;
  free(c->dir);
  c->dir = t->dir; /* the shared overlay owns what the template had */
  t->dir = NULL;
  c->per_initiator = false;
  overlay_free(t);
  return c;
err:
  overlay_free(t);
  return NULL;
}

/* A client's clone is over one of the template's versions: the view holds it. */
static int clone_accept(void *arg, const char *parent)
{
  struct cow *c = arg, *t = c->tmpl;
  pthread_mutex_lock(&t->vlock);
  for (size_t i = 0; i < t->nv && !c->ver; i++)
    if (t->vv[i]->spec && !strcmp(t->vv[i]->spec, parent))
      c->ver = ver_ref(t->vv[i]);
  pthread_mutex_unlock(&t->vlock);
  return c->ver ? 0 : -1;
}

static void *cow_open_client(void *hv, const char *client)
{
  struct cow *t = hv;
  if (!t->per_initiator) {
    lg_set_error("cow \"%s\": not per_initiator", t->name);
    return NULL;
  }
  if (t->rbdt) {
    struct cow *c = cow_alloc();
    if (!c || !(c->name = strdup(t->name))) {
      lg_set_error("storage object \"%s\": out of memory", t->name);
      if (c)
        overlay_free(c);
      return NULL;
    }
    c->tmpl = t;
    c->bops = t->bops;
    c->bh = t->bh;
    c->size = t->size;
    c->lbs = t->lbs;
    c->block = t->block;
    c->quota = t->quota;
    c->readonly = t->readonly;
    struct cow_ver *cur = cur_get(t);
    c->rbdv = lg_rbd_clone_open(t->rbdt, client, t->readonly, t->quota,
                                cur ? cur->spec : NULL, cur ? clone_accept : NULL, c);
    ver_put(cur);
    if (!c->rbdv) {
      overlay_free(c);
      return NULL;
    }
    c->size = lg_rbd_backstore.size(c->rbdv); /* its version's */
    return c;
  }
  return overlay_open(t, client);
}

static int cow_flush(void *hv);

static void cow_close(void *hv)
{
  struct cow *c = hv;
  if (c->fd >= 0 && !c->readonly)
    cow_flush(c);
  overlay_free(c);
}

static uint64_t cow_size(void *hv) { return ((struct cow *)hv)->size; }
static uint32_t cow_block_size(void *hv) { return ((struct cow *)hv)->lbs; }
static bool cow_can_write(void *hv)
{
  struct cow *c = hv;
  return !c->readonly && (c->fd >= 0 || c->rbdv);
}
static bool cow_can_true(void *hv) { (void)hv; return true; }

static bool bit_get(struct cow *c, uint64_t b)
{
  return atomic_load_explicit(&c->bits[b / 64], memory_order_acquire) >> (b % 64) & 1;
}

static void bit_set(struct cow *c, uint64_t b, bool on)
{
  uint64_t m = 1ull << (b % 64);
  uint64_t old = on ? atomic_fetch_or_explicit(&c->bits[b / 64], m, memory_order_release)
                    : atomic_fetch_and_explicit(&c->bits[b / 64], ~m, memory_order_release);
  if (!!(old & m) != on) {
    if (on)
      atomic_fetch_add(&c->allocated, 1);
    else
      atomic_fetch_sub(&c->allocated, 1);
    atomic_store(&c->pages[b / PAGE_BITS].dirty, true);
  }
}

static uint64_t block_len(const struct cow *c, uint64_t b)
{
  uint64_t start = b * c->block;
  return c->size - start < c->block ? c->size - start : c->block;
}

/* Reads of unallocated blocks go straight to the base, into the caller's
 * buffer: no copy, no lock (the bitmap is read atomically).  nowait: only
 * from the page cache (-EAGAIN otherwise, see backstore.h). */
static int cow_read(void *hv, void *buf, size_t count, uint64_t offset, bool nowait)
{
  struct cow *c = hv;
  uint8_t *p = buf;
  if (c->rbdv) /* a client's RBD clone */
    return nowait ? -EAGAIN : lg_rbd_backstore.pread(c->rbdv, buf, count, offset);
  int (*base_read)(void *, void *, size_t, uint64_t) =
    nowait ? c->bops->pread_nowait : c->bops->pread;
  if (!base_read)
    return -EAGAIN;
  if (c->fd < 0) { /* a per-initiator template reads as its current version */
    struct cow_ver *v = c->rbdt ? NULL : cur_get(c);
    if (!v) /* an "overlay_pool" template: its base */
      return base_read(c->bh, buf, count, offset);
    int (*rd)(void *, void *, size_t, uint64_t) = nowait ? v->ops->pread_nowait : v->ops->pread;
    int r = !rd ? -EAGAIN : rd(v->h, buf, count, offset);
    ver_put(v);
    return r;
  }
  while (count > 0) {
    /* a run of blocks in the same state, read with one call */
    uint64_t b = offset / c->block;
    bool in_overlay = bit_get(c, b);
    uint64_t end = (b + 1) * c->block;
    while (end < offset + count && bit_get(c, end / c->block) == in_overlay)
      end += c->block;
    size_t n = end - offset < count ? (size_t)(end - offset) : count;
    int r = in_overlay ? lg_pread_full(c->fd, p, n, c->data_off + offset, nowait)
                       : base_read(c->bh, p, n, offset);
    if (r < 0)
      return r;
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int cow_pread(void *hv, void *buf, size_t count, uint64_t offset)
{
  return cow_read(hv, buf, count, offset, false);
}

static int cow_pread_nowait(void *hv, void *buf, size_t count, uint64_t offset)
{
  return cow_read(hv, buf, count, offset, true);
}

/* A range no client write has touched is the base's: sent from its
 * mapping.  A write landing meanwhile goes to the overlay, so what is sent
 * is the data as it was before that write, as with a read that ran first. */
static const void *cow_map_cached(void *hv, size_t count, uint64_t offset)
{
  struct cow *c = hv;
  if (!c->bops->map_cached || count == 0 || c->rbdv || (c->fd < 0 && c->nv && c->vv[0]->id))
    return NULL; /* (a template's version may be closed meanwhile: no mapping) */
  if (c->fd >= 0)
    for (uint64_t b = offset / c->block; b * c->block < offset + count; b++)
      if (bit_get(c, b))
        return NULL;
  return c->bops->map_cached(c->bh, count, offset);
}

/* First write into block b: fill the block from the base around the new data. */
static int copy_up(struct cow *c, uint64_t b, const uint8_t *data, uint64_t off_in_block,
                   size_t n)
{
  uint64_t len = block_len(c, b);
  if (c->quota && (atomic_load(&c->allocated) + 1) * c->block > c->quota) {
    static _Atomic int64_t last_warn;
    int64_t now = (int64_t)time(NULL), last = atomic_load(&last_warn);
    if (now != last && atomic_compare_exchange_strong(&last_warn, &last, now))
    {
      char safe[LG_SAFE_MAX];
      lg_kv(LG_WARN, "overlay quota reached; write refused", "storage=%s initiator=%s "
            "quota=%llu", c->name, c->client ? lg_safe(c->client, safe, sizeof safe) : "-",
            (unsigned long long)c->quota);
    }
    return -ENOSPC;
  }
  int r;
  if (off_in_block == 0 && n == len) {
    r = write_full(c->fd, data, n, c->data_off + b * c->block);
  } else {
    uint8_t *tmp = malloc(len);
    if (!tmp)
      return -ENOMEM;
    r = c->bops->pread(c->bh, tmp, len, b * c->block);
    if (r == 0) {
      memcpy(tmp + off_in_block, data, n);
      r = write_full(c->fd, tmp, len, c->data_off + b * c->block);
    }
    free(tmp);
  }
  if (r == 0)
    bit_set(c, b, true);
  return r;
}

static int cow_pwrite(void *hv, const void *buf, size_t count, uint64_t offset, unsigned flags)
{
  if (((struct cow *)hv)->rbdv)
    return lg_rbd_backstore.pwrite(((struct cow *)hv)->rbdv, buf, count, offset, flags);
  struct cow *c = hv;
  const uint8_t *p = buf;
  if (!cow_can_write(c))
    return -EROFS;
  while (count > 0) {
    uint64_t b = offset / c->block, boff = offset % c->block;
    size_t n = block_len(c, b) - boff < count ? (size_t)(block_len(c, b) - boff) : count;
    int r = 0;
    if (bit_get(c, b)) {
      r = write_full(c->fd, p, n, c->data_off + offset);
    } else {
      pthread_mutex_t *m = &c->stripes[b % STRIPES];
      pthread_mutex_lock(m);
      if (bit_get(c, b)) /* someone copied it up meanwhile */
        r = write_full(c->fd, p, n, c->data_off + offset);
      else
        r = copy_up(c, b, p, boff, n);
      pthread_mutex_unlock(m);
    }
    if (r < 0)
      return r;
    p += n;
    offset += n;
    count -= n;
  }
  return (flags & LG_BS_FUA) ? cow_flush(c) : 0;
}

static int cow_flush(void *hv)
{
  if (((struct cow *)hv)->rbdv)
    return lg_rbd_backstore.flush(((struct cow *)hv)->rbdv);
  struct cow *c = hv;
  if (c->fd < 0 || c->readonly)
    return 0;
  uint8_t *slot = malloc(PAGE_SIZE_);
  if (!slot)
    return -ENOMEM;
  pthread_mutex_lock(&c->flush_lock);
  int r = 0;
  /* (1) snapshot dirty pages: only these are written below.  Every page is
   * visited: one dirtied meanwhile must not push out one dirty before. */
  uint64_t *snap = malloc(c->npages * (PAGE_WORDS * 8 + 8));
  if (!snap) {
    r = -ENOMEM;
    goto out;
  }
  uint64_t k = 0;
  for (uint64_t p = 0; p < c->npages; p++) {
    if (!atomic_exchange(&c->pages[p].dirty, false))
      continue;
    uint64_t *s = snap + k * (PAGE_WORDS + 1);
    s[0] = p;
    for (unsigned w = 0; w < PAGE_WORDS; w++) {
      uint64_t idx = p * PAGE_WORDS + w;
      s[1 + w] = idx * 64 < c->nblocks ? atomic_load(&c->bits[idx]) : 0;
    }
    k++;
  }
  /* (2) the data those bits point to */
  if (fdatasync(c->fd) < 0) {
    r = -errno;
    goto redirty;
  }
  /* (3) each page into its older slot */
  for (uint64_t i = 0; i < k; i++) {
    uint64_t *s = snap + i * (PAGE_WORDS + 1), p = s[0];
    uint64_t gen = c->pages[p].gen + 1;
    memset(slot, 0, PAGE_SIZE_);
    put_le64(slot, gen);
    for (unsigned w = 0; w < PAGE_WORDS; w++)
      put_le64(slot + 16 + 8 * w, s[1 + w]);
    put_le32(slot + 8, crc(slot + 16, PAGE_SIZE_ - 16) ^ (uint32_t)gen);
    r = write_full(c->fd, slot, PAGE_SIZE_, MAP_OFF + (p * 2 + (gen & 1)) * PAGE_SIZE_);
    if (r < 0)
      goto redirty;
    c->pages[p].gen = gen;
  }
  /* (4) the map itself */
  if (k && fdatasync(c->fd) < 0) {
    r = -errno;
    goto redirty;
  }
  goto out;
redirty: /* not persisted: try again at the next flush */
  for (uint64_t i = 0; i < k; i++)
    atomic_store(&c->pages[snap[i * (PAGE_WORDS + 1)]].dirty, true);
out:
  pthread_mutex_unlock(&c->flush_lock);
  free(snap);
  free(slot);
  return r;
}

/* Return whole blocks in [offset, offset+count) to the base. */
static int cow_trim(void *hv, uint64_t count, uint64_t offset)
{
  if (((struct cow *)hv)->rbdv)
    return lg_rbd_backstore.trim(((struct cow *)hv)->rbdv, count, offset);
  struct cow *c = hv;
  if (!cow_can_write(c))
    return -EROFS;
  uint64_t first = div_up(offset, c->block), end = offset + count;
  uint64_t last = end == c->size ? c->nblocks : end / c->block; /* exclusive */
  bool any = false;
  for (uint64_t b = first; b < last; b++) {
    if (!bit_get(c, b))
      continue;
    pthread_mutex_lock(&c->stripes[b % STRIPES]);
    bit_set(c, b, false);
    pthread_mutex_unlock(&c->stripes[b % STRIPES]);
    any = true;
  }
  if (!any)
    return 0;
  int r = cow_flush(c); /* the cleared bits first, then the holes */
  if (r < 0)
    return r;
  for (uint64_t b = first; b < last; b++) {
    pthread_mutex_lock(&c->stripes[b % STRIPES]);
    if (!bit_get(c, b))
      fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                (off_t)(c->data_off + b * c->block), (off_t)block_len(c, b));
    pthread_mutex_unlock(&c->stripes[b % STRIPES]);
  }
  return 0;
}

/* Zeroes: partial blocks are written, whole blocks too (the base may not be
 * zero there, so a block cannot simply return to it). */
static int cow_zero(void *hv, uint64_t count, uint64_t offset, unsigned flags)
{
  if (((struct cow *)hv)->rbdv)
    return lg_rbd_backstore.zero(((struct cow *)hv)->rbdv, count, offset, flags);
  static const uint8_t zeroes[65536];
  while (count > 0) {
    size_t n = count < sizeof zeroes ? (size_t)count : sizeof zeroes;
    int r = cow_pwrite(hv, zeroes, n, offset, 0);
    if (r < 0)
      return r;
    count -= n;
    offset += n;
  }
  return (flags & LG_BS_FUA) ? cow_flush(hv) : 0;
}

/* Allocation as the client sees it: overlay blocks are data; elsewhere the base's. */
static int cow_extents(void *hv, uint64_t count, uint64_t offset, struct lg_extent *ext,
                       size_t *n)
{
  if (((struct cow *)hv)->rbdv)
    return lg_rbd_backstore.extents(((struct cow *)hv)->rbdv, count, offset, ext, n);
  struct cow *c = hv;
  if (c->fd < 0) {
    struct cow_ver *v = c->rbdt ? NULL : cur_get(c);
    const struct lg_backstore_ops *o = v ? v->ops : c->bops;
    int r = o->extents ? o->extents(v ? v->h : c->bh, count, offset, ext, n) : -ENOTSUP;
    ver_put(v);
    return r;
  }
  if (!c->bops->extents)
    return -ENOTSUP;
  size_t max = *n, used = 0;
  uint64_t end = offset + count;
  while (offset < end && used < max) {
    uint64_t b = offset / c->block;
    uint64_t bend = (b + 1) * c->block < end ? (b + 1) * c->block : end;
    if (bit_get(c, b)) {
      if (used && ext[used - 1].flags == 0 && ext[used - 1].offset + ext[used - 1].length == offset)
        ext[used - 1].length += bend - offset;
      else
        ext[used++] = (struct lg_extent){ offset, bend - offset, 0 };
      offset = bend;
    } else {
      size_t k = max - used;
      int r = c->bops->extents(c->bh, bend - offset, offset, ext + used, &k);
      if (r < 0)
        return r;
      for (size_t i = 0; i < k; i++)
        offset = ext[used + i].offset + ext[used + i].length;
      used += k;
      if (k == 0)
        break;
    }
  }
  *n = used;
  return 0;
}

/* A client's RBD clone starts its requests asynchronously (backends/rbd.c);
 * a view on an overlay file does not (-EOPNOTSUPP: the synchronous calls). */
#define COW_RBD_ASYNC(hv, CALL, ...) \
  (((struct cow *)(hv))->rbdv ? lg_rbd_backstore.CALL(((struct cow *)(hv))->rbdv, __VA_ARGS__) \
                              : -EOPNOTSUPP)

static int cow_pread_async(void *hv, void *buf, size_t count, uint64_t offset,
                           void (*done)(void *arg, int result), void *arg)
{
  return COW_RBD_ASYNC(hv, pread_async, buf, count, offset, done, arg);
}

static int cow_pwrite_async(void *hv, const void *buf, size_t count, uint64_t offset,
                            unsigned flags, void (*done)(void *arg, int result), void *arg)
{
  return COW_RBD_ASYNC(hv, pwrite_async, buf, count, offset, flags, done, arg);
}

static int cow_flush_async(void *hv, void (*done)(void *arg, int result), void *arg)
{
  return COW_RBD_ASYNC(hv, flush_async, done, arg);
}

static int cow_trim_async(void *hv, uint64_t count, uint64_t offset,
                          void (*done)(void *arg, int result), void *arg)
{
  return COW_RBD_ASYNC(hv, trim_async, count, offset, done, arg);
}

static int cow_zero_async(void *hv, uint64_t count, uint64_t offset, unsigned flags,
                          void (*done)(void *arg, int result), void *arg)
{
  return COW_RBD_ASYNC(hv, zero_async, count, offset, flags, done, arg);
}

const struct lg_backstore_ops lg_cow_backstore = {
  .name = "cow",
  .open = cow_open,
  .close = cow_close,
  .size = cow_size,
  .block_size = cow_block_size,
  .can_write = cow_can_write,
  .can_flush = cow_can_true,
  .can_trim = cow_can_write,
  .can_zero = cow_can_write,
  .can_extents = cow_can_true,
  .pread = cow_pread,
  .pread_nowait = cow_pread_nowait,
  .map_cached = cow_map_cached,
  .pwrite = cow_pwrite,
  .flush = cow_flush,
  .trim = cow_trim,
  .zero = cow_zero,
  .extents = cow_extents,
  .open_client = cow_open_client,
  .pread_async = cow_pread_async,
  .pwrite_async = cow_pwrite_async,
  .flush_async = cow_flush_async,
  .trim_async = cow_trim_async,
  .zero_async = cow_zero_async,
};

/* ---- lifecycle ---- */

bool cow_is_per_initiator(void *hv) { return ((struct cow *)hv)->per_initiator; }
uint64_t cow_quota(void *hv) { return ((struct cow *)hv)->quota; }
const char *cow_overlay_dir(void *hv)
{
  struct cow *c = hv;
  return c->tmpl ? c->tmpl->dir : c->dir;
}
uint64_t cow_allocated(void *hv)
{
  struct cow *c = hv;
  if (c->rbdv)
    return lg_rbd_allocated(c->rbdv);
  return c->bits ? atomic_load(&c->allocated) * c->block : 0;
}

/* The boot record as text (an RBD clone's "lungate.boot"):
 * "1 N FENCED CLEAN LAST_END ISID..." with the ISIDs in hex. */
static const char *boot_text(const struct cow_boot *b, char *out, size_t len)
{
  int n = snprintf(out, len, "1 %u %d %d %llu", b->n, b->fenced, b->clean,
                   (unsigned long long)b->last_end);
  for (unsigned i = 0; i < b->n && i < COW_BOOT_ISIDS && n > 0 && (size_t)n < len; i++)
    n += snprintf(out + n, len - (size_t)n, " %02x%02x%02x%02x%02x%02x", b->isid[i][0],
                  b->isid[i][1], b->isid[i][2], b->isid[i][3], b->isid[i][4], b->isid[i][5]);
  return out;
}

static bool boot_parse(const char *text, struct cow_boot *b)
{
  unsigned n, i;
  int fenced, clean, used;
  unsigned long long last;
  memset(b, 0, sizeof *b);
  if (sscanf(text, "1 %u %d %d %llu%n", &n, &fenced, &clean, &last, &used) != 4 ||
      n > COW_BOOT_ISIDS)
    return false;
  text += used;
  for (i = 0; i < n; i++) {
    unsigned x[6];
    if (sscanf(text, " %2x%2x%2x%2x%2x%2x%n", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5],
               &used) != 6)
      return false;
    for (int k = 0; k < 6; k++)
      b->isid[i][k] = (uint8_t)x[k];
    text += used;
  }
  b->n = (uint8_t)n;
  b->fenced = fenced != 0;
  b->clean = clean != 0;
  b->last_end = last;
  return true;
}

int cow_record_read(void *hv, const char *client, struct cow_info *info)
{
  struct cow *t = hv;
  memset(info, 0, sizeof *info);
  if (t->rbdt) {
    char v[160];
    int r = lg_rbd_clone_meta(t->rbdt, client, "lungate.last_use", v, sizeof v);
    if (r < 0)
      return r;
    info->last_use = strtoull(v, NULL, 10);
    info->unclean = strstr(v, "live") != NULL;
    if (lg_rbd_clone_meta(t->rbdt, client, "lungate.boot", v, sizeof v) == 0 &&
        !boot_parse(v, &info->boot))
      memset(&info->boot, 0, sizeof info->boot);
    char parent[1200];
    if (t->nv && lg_rbd_clone_parent(t->rbdt, client, parent, sizeof parent) == 0) {
      cow_spec_sum(parent, info->base_sum); /* the version it is over */
      info->have_sum = true;
    }
    snprintf(info->client, sizeof info->client, "%s", client);
    return 0;
  }
  char path[4096];
  int r = cow_overlay_path(hv, client, path, sizeof path);
  return r < 0 ? r : cow_info_read(path, info);
}

void cow_touch(void *hv, bool live, const struct cow_boot *boot)
{
  struct cow *c = hv;
  if (c->rbdv) { /* the clone's image metadata */
    char text[160];
    lg_rbd_touch(c->rbdv, live, boot ? boot_text(boot, text, sizeof text) : NULL);
    return;
  }
  uint8_t rec[BOOTREC_OFF + BOOTREC_LEN] = { 0 };
  if (c->fd < 0 || c->readonly)
    return;
  put_le64(rec, (uint64_t)time(NULL));
  put_le32(rec + 8, live);
  put_le32(rec + 12, crc(rec, 12));
  uint8_t *b = rec + BOOTREC_OFF;
  if (boot) {
    b[0] = boot->n > COW_BOOT_ISIDS ? COW_BOOT_ISIDS : boot->n;
    b[1] = boot->fenced;
    b[2] = boot->clean;
    memcpy(b + 4, boot->isid, sizeof boot->isid);
    put_le64(b + 52, boot->last_end);
  }
  put_le32(b + BOOTREC_LEN - 4, crc(b, BOOTREC_LEN - 4));
  if (write_full(c->fd, rec, sizeof rec, LASTUSE_OFF) == 0 && live && fdatasync(c->fd) < 0)
    lg_warn("cow: %s: fdatasync of the session record: %s", c->path, strerror(errno));
}

int cow_info_read(const char *path, struct cow_info *info)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -errno;
  uint8_t *buf = malloc(HDR_SIZE + BOOTREC_OFF + BOOTREC_LEN);
  int r = buf ? lg_pread_full(fd, buf, HDR_SIZE + BOOTREC_OFF + BOOTREC_LEN, 0, false) : -ENOMEM;
  if (r == 0)
    r = header_check(buf);
  if (r == 0) {
    memset(info, 0, sizeof *info);
    uint32_t cl = get_le32(buf + 104);
    if (cl > 255)
      cl = 255;
    memcpy(info->client, buf + 108, cl);
    info->block_size = get_le32(buf + 12);
    info->size = get_le64(buf + 16);
    memcpy(info->base_sum, buf + 32, BASE_ID_LEN);
    info->have_sum = true;
    uint64_t npages = get_le64(buf + 88);
    const uint8_t *rec = buf + LASTUSE_OFF;
    bool live = false;
    if (get_le32(rec + 12) == crc(rec, 12)) {
      info->last_use = get_le64(rec);
      live = get_le32(rec + 8) != 0;
    }
    struct stat st;
    /* no record, or a session that never ended (the gateway died): the last
     * write is the best last use there is */
    if ((!info->last_use || live) && fstat(fd, &st) == 0 &&
        (uint64_t)st.st_mtime > info->last_use)
      info->last_use = (uint64_t)st.st_mtime;
    info->unclean = live;
    const uint8_t *b = rec + BOOTREC_OFF;
    if (get_le32(b + BOOTREC_LEN - 4) == crc(b, BOOTREC_LEN - 4) && b[0] <= COW_BOOT_ISIDS) {
      info->boot.n = b[0];
      info->boot.fenced = b[1] != 0;
      info->boot.clean = b[2] != 0;
      memcpy(info->boot.isid, b + 4, sizeof info->boot.isid);
      info->boot.last_end = get_le64(b + 52);
    }
    /* count bits: the newest valid slot of each page */
    uint8_t *slot = malloc(PAGE_SIZE_);
    uint64_t blocks = 0;
    for (uint64_t p = 0; slot && p < npages && r == 0; p++) {
      uint64_t best = 0, cnt = 0;
      for (int s = 0; s < 2; s++) {
        if ((r = lg_pread_full(fd, slot, PAGE_SIZE_,
                               MAP_OFF + (p * 2 + (uint64_t)s) * PAGE_SIZE_, false)) < 0)
          break;
        uint64_t gen = get_le64(slot);
        if (gen == 0 || gen <= best || get_le32(slot + 8) != (crc(slot + 16, PAGE_SIZE_ - 16) ^ (uint32_t)gen))
          continue;
        best = gen;
        cnt = 0;
        for (unsigned w = 0; w < PAGE_WORDS; w++)
          cnt += (uint64_t)__builtin_popcountll(get_le64(slot + 16 + 8 * w));
      }
      blocks += cnt;
    }
    free(slot);
    info->allocated = blocks * info->block_size;
  }
  free(buf);
  close(fd);
  return r;
}

int cow_overlay_remove(void *hv, const char *client)
{
  struct cow *t = hv;
  if (t->rbdt)
    return client ? lg_rbd_clone_remove(t->rbdt, client) : -ENOENT;
  char path[PATH_MAX];
  int r = cow_overlay_path(hv, client, path, sizeof path);
  if (r < 0)
    return r;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -errno;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    close(fd);
    return -EBUSY;
  }
  r = unlink(path) < 0 ? -errno : 0;
  close(fd);
  return r;
}

int cow_view_detach(void *view)
{
  struct cow *c = view;
  if (c->rbdv)
    return lg_rbd_detach(c->rbdv);
  if (!c->path)
    return -EOPNOTSUPP;
  struct stat held, named;
  if (fstat(c->fd, &held) < 0)
    return -errno;
  if (lstat(c->path, &named) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (held.st_dev != named.st_dev || held.st_ino != named.st_ino)
    return 0; /* the name is another file's already */
  return unlink(c->path) < 0 ? -errno : 0;
}

bool cow_in_ceph(void *hv) { return ((struct cow *)hv)->rbdt != NULL; }

int cow_probe_rbd(void *hv, const char *spec, uint64_t *size, char *err, size_t errlen)
{
  struct cow *t = hv;
  if (!t->rbdt) {
    snprintf(err, errlen, "%s: its clients' layers are not RBD clones", t->name);
    return -EINVAL;
  }
  return lg_rbd_snap_probe(t->rbdt, spec, size, err, errlen);
}

struct clones_walk {
  int (*fn)(const char *path, const struct cow_info *info, void *arg);
  void *arg;
};

static void clone_info(const struct lg_rbd_clone_info *ci, struct cow_info *info)
{
  *info = (struct cow_info){ .size = ci->size, .allocated = ci->allocated,
                             .last_use = ci->last_use, .unclean = ci->live_mark && !ci->live,
                             .block_size = (uint32_t)ci->obj_size };
  snprintf(info->client, sizeof info->client, "%s", ci->client);
  if (ci->parent[0]) {
    cow_spec_sum(ci->parent, info->base_sum);
    info->have_sum = true;
  }
}

static int clone_step(const struct lg_rbd_clone_info *ci, void *arg)
{
  struct clones_walk *w = arg;
  struct cow_info info;
  clone_info(ci, &info);
  return w->fn(ci->path, &info, w->arg);
}

int cow_clones_foreach(void *hv, int (*fn)(const char *path, const struct cow_info *info,
                                           void *arg), void *arg)
{
  struct cow *t = hv;
  struct clones_walk w = { fn, arg };
  return t->rbdt ? lg_rbd_clones_foreach(t->rbdt, clone_step, &w) : -EINVAL;
}

bool cow_clone_exists(void *hv, const char *client)
{
  struct cow *t = hv;
  bool exists = false, live = false;
  return t->rbdt && lg_rbd_clone_state(t->rbdt, client, &exists, &live) == 0 && exists;
}

int cow_clone_commit(void *hv, const char *spec, char *err, size_t errlen)
{
  struct cow *c = hv;
  if (!c->rbdv) {
    snprintf(err, errlen, "a commit to rbd:%s needs a client whose disk is an RBD clone", spec);
    return -EINVAL;
  }
  return lg_rbd_commit(c->rbdv, spec, err, errlen);
}

int cow_clone_names(void *hv, int (*fn)(const char *client, void *arg), void *arg)
{
  struct cow *t = hv;
  return t->rbdt ? lg_rbd_clones_list(t->rbdt, fn, arg) : -EINVAL;
}

int cow_clone_changed(void *hv, const char *client, struct timespec *when)
{
  struct cow *t = hv;
  return t->rbdt ? lg_rbd_clone_changed(t->rbdt, client, when) : -EINVAL;
}

bool cow_clone_live(void *hv, const char *client)
{
  struct cow *t = hv;
  bool exists = false, live = false;
  return t->rbdt && lg_rbd_clone_state(t->rbdt, client, &exists, &live) == 0 && live;
}

bool cow_in_use(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  bool busy = flock(fd, LOCK_SH | LOCK_NB) < 0;
  close(fd);
  return busy;
}

/* ---- image versions: the interface ---- */

uint32_t cow_current_version(void *hv)
{
  struct cow *t = hv;
  pthread_mutex_lock(&t->vlock);
  uint32_t id = t->cur ? t->cur->id : 0;
  pthread_mutex_unlock(&t->vlock);
  return id;
}

bool cow_keep_old_version(void *hv)
{
  struct cow *t = hv;
  pthread_mutex_lock(&t->vlock);
  bool keep = t->keep_old;
  pthread_mutex_unlock(&t->vlock);
  return keep;
}

int cow_current_sum(void *hv, uint8_t sum[COW_SUM_LEN])
{
  struct cow *t = hv;
  struct cow_ver *v = cur_get(t);
  if (v)
    memcpy(sum, v->sum, BASE_ID_LEN);
  ver_put(v);
  return v ? 0 : -ENOENT;
}

long cow_version_of_sum(void *hv, const uint8_t sum[COW_SUM_LEN])
{
  struct cow *t = hv;
  long id = -1;
  pthread_mutex_lock(&t->vlock);
  if (t->cur && t->cur->have_sum && !memcmp(t->cur->sum, sum, BASE_ID_LEN))
    id = t->cur->id;
  for (size_t i = 0; id < 0 && i < t->nv; i++)
    if (t->vv[i]->have_sum && !memcmp(t->vv[i]->sum, sum, BASE_ID_LEN))
      id = t->vv[i]->id;
  pthread_mutex_unlock(&t->vlock);
  return id;
}

bool cow_sum_outdated(void *hv, const uint8_t sum[COW_SUM_LEN])
{
  struct cow *t = hv;
  bool old = false;
  pthread_mutex_lock(&t->vlock); /* another of its versions (not a changed base) */
  for (size_t i = 0; t->cur && t->cur->have_sum && i < t->nv; i++)
    old |= t->vv[i]->have_sum && !memcmp(t->vv[i]->sum, sum, BASE_ID_LEN) &&
           memcmp(t->cur->sum, sum, BASE_ID_LEN) != 0;
  pthread_mutex_unlock(&t->vlock);
  return old;
}

bool cow_view_outdated(void *view)
{
  struct cow *c = view;
  if (!c->tmpl || !c->ver)
    return false;
  struct cow_ver *cur = cur_get(c->tmpl);
  bool old = cur && memcmp(cur->sum, c->ver->sum, BASE_ID_LEN) != 0;
  ver_put(cur);
  return old;
}

unsigned cow_version_views(void *hv, uint32_t id)
{
  struct cow *t = hv;
  unsigned n = 0;
  pthread_mutex_lock(&t->vlock);
  for (size_t i = 0; i < t->nv; i++)
    if (t->vv[i]->id == id)
      n = atomic_load(&t->vv[i]->refs) - 1; /* the list's own */
  pthread_mutex_unlock(&t->vlock);
  return n;
}

int cow_probe_file(void *hv, const char *file, uint64_t *size, uint8_t sum[COW_SUM_LEN],
                   void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg)
{
  struct cow *t = hv;
  struct cow_ver v = { .id = 0, .file = (char *)file };
  atomic_init(&v.refs, 1);
  v.have_sum = true; /* computed below, with progress */
  if (ver_open(t, &v) < 0)
    return -1;
  size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  uint64_t c64 = 0;
  uint32_t c32 = ISCSI_CRC32C_INIT;
  int r = buf ? 0 : -ENOMEM;
  for (uint64_t off = 0; off < v.size && r == 0; off += chunk) {
    size_t n = v.size - off < chunk ? (size_t)(v.size - off) : chunk;
    r = v.ops->pread(v.h, buf, n, off);
    c64 = crc64_ecma_refl(c64, buf, n);
    c32 = iscsi_crc32c(buf, n, c32);
    if (progress)
      progress(arg, off + n, v.size);
  }
  free(buf);
  v.ops->close(v.h);
  if (r < 0) {
    lg_set_error("reading %s: %s", file, strerror(-r));
    return -1;
  }
  memset(sum, 0, BASE_ID_LEN); /* as base_identity() makes it */
  put_le64(sum, v.size);
  put_le64(sum + 8, c64);
  put_le32(sum + 16, iscsi_crc32c_final(c32));
  *size = v.size;
  return 0;
}

int cow_versions_stage(void *hv, const json_t *def)
{
  struct cow *t = hv;
  if (t->staged)
    cow_versions_finish(hv, false);
  struct cow_ver **vv, *cur;
  size_t nv;
  bool keep;
  pthread_mutex_lock(&t->vlock); /* (reads t's list; a login may open a version) */
  int r = versions_parse(t, def, &vv, &nv, &cur, &keep);
  if (r == 0 && !vv) {
    /* versions gone: back to the base itself (a hand edit) */
    lg_set_error("storage object \"%s\": a running gateway cannot drop all its "
                 "\"versions\"; restart it", t->name);
    r = -1;
  }
  if (r == 0 && ver_open(t, cur) < 0) {
    ver_list_free(vv, nv);
    r = -1;
  }
  pthread_mutex_unlock(&t->vlock);
  if (r < 0)
    return -1;
  t->st_vv = vv;
  t->st_nv = nv;
  t->st_cur = cur;
  t->st_keep = keep;
  t->staged = true;
  return 0;
}

void cow_versions_finish(void *hv, bool commit)
{
  struct cow *t = hv;
  if (!t->staged)
    return;
  struct cow_ver **old = t->st_vv;
  size_t n_old = t->st_nv;
  if (commit) {
    pthread_mutex_lock(&t->vlock);
    old = t->vv;
    n_old = t->nv;
    t->vv = t->st_vv;
    t->nv = t->st_nv;
    t->cur = t->st_cur;
    t->keep_old = t->st_keep;
    if (t->cur->size)
      t->size = t->cur->size;
    pthread_mutex_unlock(&t->vlock);
  }
  t->st_vv = NULL;
  t->st_nv = 0;
  t->st_cur = NULL;
  t->staged = false;
  ver_list_free(old, n_old);
}

size_t cow_version_ids(void *hv, uint32_t *ids, size_t max)
{
  struct cow *t = hv;
  size_t n = 0;
  pthread_mutex_lock(&t->vlock);
  for (size_t i = 0; i < t->nv; i++)
    if (t->vv[i]->id && n < max)
      ids[n++] = t->vv[i]->id;
  pthread_mutex_unlock(&t->vlock);
  return n;
}
