/* Loading the target model from an rtslib-fb shaped saveconfig.json.
 *
 * Every error names the config file, the JSON path of the key at fault and
 * what to do, e.g.  "lungate.json: storage_objects[1].dev: missing; ...".
 * Keys lungate does not know are left in the JSON, which is kept with the model.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "scsi/scsi.h"
#include "target/model.h"
#include "util/log.h"

struct loader {
  const char *file;                  /* for messages */
  char *err;                         /* first error, malloc'd */
  const char *config_dir;
  const struct lg_model *prev;       /* a reload: storage objects to share */
  bool is_base;                      /* the object being opened is a base */
  struct lg_storage **staged;        /* cow objects kept open whose versions changed */
  size_t n_staged;
};

static void load_error(struct loader *L, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static void load_error(struct loader *L, const char *fmt, ...)
{
  if (L->err)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (asprintf(&L->err, "%s: %s", L->file, msg) < 0)
    L->err = NULL;
}

void lg_params_default(struct lg_params *p)
{
  *p = (struct lg_params){
    .initial_r2t = false,
    .immediate_data = true,
    .max_recv_data_segment_length = 262144,
    .max_burst_length = 1048576,
    .first_burst_length = 262144,
    .max_outstanding_r2t = 8,
    .default_time2wait = 2,
    .default_time2retain = 20,
    .header_digest_crc32c = true,
    .data_digest_crc32c = true,
  };
}

/* true for JSON true, non-zero integers and "1"/"yes"/"true" strings */
static bool json_truthy(const json_t *v)
{
  if (json_is_boolean(v))
    return json_is_true(v);
  if (json_is_integer(v))
    return json_integer_value(v) != 0;
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    return !strcasecmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true");
  }
  return false;
}

/* A parameter value: "Yes"/"No" or a decimal number; -1 if unusable. */
static int param_bool(const char *s)
{
  if (!strcasecmp(s, "yes")) return 1;
  if (!strcasecmp(s, "no")) return 0;
  return -1;
}

static void load_params(struct loader *L, const json_t *params, const char *where,
                        struct lg_params *p)
{
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)params, key, v) {
    const char *s = json_string_value(v);
    char buf[32];
    if (!s && json_is_integer(v)) {
      snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
      s = buf;
    }
    if (!s)
      continue;
    static const struct { const char *name; size_t off; uint32_t min, max; } nums[] = {
      { "MaxRecvDataSegmentLength", offsetof(struct lg_params, max_recv_data_segment_length), 512, 16777215 },
      { "MaxBurstLength", offsetof(struct lg_params, max_burst_length), 512, 16777215 },
      { "FirstBurstLength", offsetof(struct lg_params, first_burst_length), 512, 16777215 },
      { "MaxOutstandingR2T", offsetof(struct lg_params, max_outstanding_r2t), 1, 65535 },
      { "DefaultTime2Wait", offsetof(struct lg_params, default_time2wait), 0, 3600 },
      { "DefaultTime2Retain", offsetof(struct lg_params, default_time2retain), 0, 3600 },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
      if (strcmp(key, nums[i].name))
        continue;
      char *end;
      unsigned long n = strtoul(s, &end, 0);
      if (!*s || *end || n < nums[i].min || n > nums[i].max)
        load_error(L, "%s.%s: \"%s\" is not a number from %u to %u", where, key,
                   s, nums[i].min, nums[i].max);
      else
        *(uint32_t *)((char *)p + nums[i].off) = (uint32_t)n;
    }
    if (!strcmp(key, "InitialR2T") || !strcmp(key, "ImmediateData")) {
      int b = param_bool(s);
      if (b < 0)
        load_error(L, "%s.%s: \"%s\" must be \"Yes\" or \"No\"", where, key, s);
      else if (key[1] == 'n')
        p->initial_r2t = b;
      else
        p->immediate_data = b;
    }
    if (!strcmp(key, "HeaderDigest"))
      p->header_digest_crc32c = strcasestr(s, "CRC32C") != NULL;
    if (!strcmp(key, "DataDigest"))
      p->data_digest_crc32c = strcasestr(s, "CRC32C") != NULL;
  }
  if (p->first_burst_length > p->max_burst_length)
    p->first_burst_length = p->max_burst_length;
}

/* FNV-1a, for identifiers derived from names when the config gives none. */
static uint64_t fnv1a(const char *s, uint64_t h)
{
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* Unit serial from rtslib's "wwn" (a UUID) or derived from name and path. */
static void storage_ids(struct lg_storage *so, const json_t *j)
{
  const char *wwn = json_string_value(json_object_get(j, "wwn"));
  if (wwn && *wwn) {
    snprintf(so->serial, sizeof so->serial, "%s", wwn);
  } else {
    const char *dev = json_string_value(json_object_get(j, "dev"));
    uint64_t a = fnv1a(so->name, 0xcbf29ce484222325ull);
    uint64_t b = fnv1a(dev ? dev : "", a ^ 0x9e3779b97f4a7c15ull);
    snprintf(so->serial, sizeof so->serial, "%016llx%016llx",
             (unsigned long long)a, (unsigned long long)b);
  }
  /* NAA 6 (IEEE registered extended): 0x6, OUI 00-14-05 as LIO uses, then
   * the serial's hex digits, so a config moved from LIO keeps its ids. */
  uint8_t nib[32] = { 6, 0, 0, 1, 4, 0, 5 };
  size_t n = 7;
  for (const char *s = so->serial; *s && n < 32; s++)
    if (isxdigit((unsigned char)*s))
      nib[n++] = (uint8_t)(isdigit((unsigned char)*s) ? *s - '0'
                                                      : tolower((unsigned char)*s) - 'a' + 10);
  for (size_t i = 0; i < 16; i++)
    so->naa[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
}

static struct lg_storage *find_storage(struct lg_model *m, const char *ref)
{
  /* "/backstores/<plugin>/<name>" */
  const char *p = ref;
  if (strncmp(p, "/backstores/", 12))
    return NULL;
  p += 12;
  const char *slash = strchr(p, '/');
  if (!slash)
    return NULL;
  for (size_t i = m->n_storage; i-- > 0;) { /* layered objects before their bases */
    struct lg_storage *so = m->storage[i];
    if (strlen(so->plugin) == (size_t)(slash - p) &&
        !strncmp(so->plugin, p, (size_t)(slash - p)) && !strcmp(so->name, slash + 1))
      return so;
  }
  return NULL;
}

/* Where a storage object keeps its persistent reservations when an initiator
 * asks for APTPL: beside the config file (lungate-pr-PLUGIN-NAME.json), or
 * with no config file (serve --image) beside the image (IMAGE.pr.json). */
static char *pr_state_file(const struct loader *L, const char *plugin, const char *name,
                           const json_t *j)
{
  char *path = NULL;
  if (L->config_dir) {
    char safe[256];
    size_t n = 0;
    for (const char *p = plugin; *p && n < 100; p++)
      safe[n++] = isalnum((unsigned char)*p) ? *p : '_';
    safe[n++] = '-';
    for (const char *p = name; *p && n < sizeof safe - 1; p++)
      safe[n++] = isalnum((unsigned char)*p) || *p == '-' || *p == '.' ? *p : '_';
    safe[n] = '\0';
    if (asprintf(&path, "%s/lungate-pr-%s.json", L->config_dir, safe) < 0)
      path = NULL;
  } else {
    const char *dev = json_string_value(json_object_get(j, "dev"));
    if (dev && asprintf(&path, "%s.pr.json", dev) < 0)
      path = NULL;
  }
  return path;
}

/* A cow object's keys that a running template takes without reopening
 * (image versions: its clients' sessions keep their disks). */
static const char *const version_keys[] = { "versions", "current", "on_new_version",
                                             "last_version" };

/* Equal but for the version keys of a cow object; *versions: those differ. */
static bool def_equal(const json_t *a, const json_t *b, bool *versions)
{
  *versions = false;
  if (json_equal((json_t *)a, (json_t *)b))
    return true;
  const char *plugin = json_string_value(json_object_get(a, "plugin"));
  if (!plugin || strcmp(plugin, "cow"))
    return false;
  json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b);
  for (size_t i = 0; x && y && i < sizeof version_keys / sizeof *version_keys; i++) {
    json_object_del(x, version_keys[i]);
    json_object_del(y, version_keys[i]);
  }
  bool eq = x && y && json_equal(x, y);
  json_decref(x);
  json_decref(y);
  return *versions = eq;
}

/* The previous model's storage object defined like j (same JSON, same base,
 * same role; a cow object's versions may differ), which a reload keeps
 * open; or NULL.  *versions: its versions are to be staged. */
static struct lg_storage *prev_storage(const struct loader *L, const json_t *j,
                                       const struct lg_storage *base, bool *versions)
{
  for (size_t i = 0; L->prev && i < L->prev->n_storage; i++) {
    struct lg_storage *so = L->prev->storage[i];
    if (so->base == base && so->is_base == L->is_base && def_equal(so->def, j, versions))
      return so;
  }
  return NULL;
}

/* Drop a model's hold on a storage object; the last one closes it. */
static void storage_unref(struct lg_storage *so)
{
  if (!so || atomic_fetch_sub(&so->refs, 1) != 1)
    return;
  if (so->h) {
    so->ops->close(so->h);
    pthread_rwlock_destroy(&so->io_lock);
  }
  scsi_lu_free(so);
  lg_overlays_forget(so);
  free(so->pr_file);
  free(so->name);
  free(so->plugin);
  json_decref(so->def);
  storage_unref(so->base);
  free(so);
}

/* Open one storage object; base: its "base" object, already open. */
static int open_storage(struct loader *L, struct lg_model *m, const json_t *j, size_t i,
                        struct lg_storage *base)
{
  const char *plugin = json_string_value(json_object_get(j, "plugin"));
  const char *name = json_string_value(json_object_get(j, "name"));
  const struct lg_backstore_ops *ops = lg_backstore_find(plugin);
  bool versions = false;
  struct lg_storage *so = prev_storage(L, j, base, &versions);
  if (so) { /* unchanged by a reload: the same open object */
    if (versions) { /* but new image versions: taken once the whole config loads */
      struct lg_storage **st = realloc(L->staged, (L->n_staged + 1) * sizeof *st);
      if (!st || cow_versions_stage(so->h, j) < 0) {
        if (st)
          L->staged = st;
        load_error(L, "storage_objects[%zu]: %s", i, st ? lg_get_error() : "out of memory");
        return -1;
      }
      L->staged = st;
      L->staged[L->n_staged++] = so;
    }
    atomic_fetch_add(&so->refs, 1);
    m->storage[m->n_storage++] = so;
    return 0;
  }
  struct lg_bs_open_args args = { .name = name, .config_dir = L->config_dir };
  if (base) {
    args.base_ops = base->ops;
    args.base_h = base->h;
    args.base_def = base->def;
  }
  /* "device_type": "disk" (the default) or "cd": a read-only MMC CD-ROM */
  json_t *dt = json_object_get(j, "device_type");
  bool cd = json_is_string(dt) && !strcmp(json_string_value(dt), "cd");
  if (dt && !cd && !(json_is_string(dt) && !strcmp(json_string_value(dt), "disk"))) {
    load_error(L, "storage_objects[%zu].device_type: use \"disk\" (the default) or \"cd\" "
               "(an ISO image served as a CD-ROM)", i);
    return -1;
  }
  args.readonly = L->is_base || cd;
  so = calloc(1, sizeof *so);
  void *h = so ? ops->open(j, &args) : NULL;
  if (!h) {
    free(so);
    load_error(L, "storage_objects[%zu]: %s", i, so ? lg_get_error() : "out of memory");
    return -1;
  }
  m->storage[m->n_storage++] = so;
  atomic_init(&so->refs, 1);
  so->is_base = L->is_base;
  so->def = json_deep_copy(j);
  if (base) {
    so->base = base;
    atomic_fetch_add(&base->refs, 1);
  }
  so->ops = ops;
  so->h = h;
  lg_io_lock_init(&so->io_lock);
  so->name = strdup(name);
  so->plugin = strdup(plugin);
  so->size = ops->size(h);
  so->block_size = ops->block_size(h);
  so->readonly = !ops->can_write(h);
  if (cd) {
    so->device_type = LG_DEV_CD;
    so->block_size = LG_CD_BLOCK;
    so->readonly = true;
    if (so->size < LG_CD_BLOCK) {
      load_error(L, "storage_objects[%zu]: a \"cd\" needs an image of at least one "
                 "2048-byte block", i);
      return -1;
    }
  }
  so->per_initiator = ops->open_client && json_is_true(json_object_get(j, "per_initiator"));
  so->shared_initiators = json_is_true(json_object_get(j, "shared_initiators"));
  so->reset_after_idle = -1;
  json_t *reset = json_object_get(j, "reset");
  if (json_is_object(reset)) {
    json_t *idle = json_object_get(reset, "after_idle");
    if (!json_is_integer(idle) || json_integer_value(idle) < 0) {
      load_error(L, "storage_objects[%zu].reset.after_idle: must be a number of seconds", i);
      return -1;
    }
    so->reset_after_idle = json_integer_value(idle);
  } else if (json_is_string(reset) && !strcmp(json_string_value(reset), "on_boot")) {
    so->reset_on_boot = true;
  } else if (reset && !(json_is_string(reset) && !strcmp(json_string_value(reset), "never"))) {
    load_error(L, "storage_objects[%zu].reset: use \"never\", \"on_boot\" or "
               "{\"after_idle\": SECONDS}", i);
    return -1;
  }
  json_t *maint = json_object_get(j, "maintainers");
  if (maint) {
    size_t k;
    json_t *m;
    bool ok = json_is_array(maint);
    json_array_foreach(maint, k, m)
      ok = ok && json_is_string(m) && json_string_length(m) > 0;
    if (!ok) {
      load_error(L, "storage_objects[%zu].maintainers: must be a list of initiator names", i);
      return -1;
    }
  }
  storage_ids(so, j);
  if (!so->per_initiator) { /* a per-initiator disk keeps no APTPL state */
    so->pr_file = pr_state_file(L, plugin, name, j);
    if (so->pr_file)
      scsi_lu_get(so);               /* reload the APTPL state now, and say so */
  }
  return so->name && so->plugin && so->def ? 0 : -1;
}

static int load_storage(struct loader *L, struct lg_model *m, const json_t *arr)
{
  if (!arr)
    return 0;
  if (!json_is_array(arr)) {
    load_error(L, "storage_objects: must be an array of storage objects");
    return -1;
  }
  size_t count = json_array_size(arr);
  m->storage = calloc(count ? count : 1, sizeof *m->storage);
  if (!m->storage)
    return -1;
  size_t i;
  json_t *j;
  /* check every entry, and find which ones are bases of others */
  json_array_foreach(arr, i, j) {
    const char *plugin = json_string_value(json_object_get(j, "plugin"));
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!json_is_object(j)) {
      load_error(L, "storage_objects[%zu]: must be an object", i);
      return -1;
    }
    if (!plugin) {
      load_error(L, "storage_objects[%zu].plugin: missing; use \"fileio\", \"block\" or \"cow\"", i);
      return -1;
    }
    if (!name || !*name || strchr(name, '/')) {
      load_error(L, "storage_objects[%zu].name: missing or contains '/'; give a short "
                 "name that LUNs refer to as /backstores/%s/NAME", i, plugin);
      return -1;
    }
    for (size_t k = 0; k < i; k++) {
      json_t *o = json_array_get(arr, k);
      if (!strcmp(json_string_value(json_object_get(o, "plugin")), plugin) &&
          !strcmp(json_string_value(json_object_get(o, "name")), name)) {
        load_error(L, "storage_objects[%zu].name: \"%s\" is used twice", i, name);
        return -1;
      }
    }
    if (!lg_backstore_find(plugin)) {
      load_error(L, "storage_objects[%zu].plugin: unknown plugin \"%s\"; this build "
                 "serves \"fileio\", \"block\", \"cow\", \"nbd\", \"qcow2\", \"rbd\" and "
                 "\"user\" (qcow/PATH, rbd/POOL/IMAGE)", i, plugin);
      return -1;
    }
  }
  /* two rounds: plain objects (bases opened read-only), then layered ones */
  for (int round = 0; round < 2; round++) {
    json_array_foreach(arr, i, j) {
      const char *bref = json_string_value(json_object_get(j, "base"));
      bool layered = json_object_get(j, "base") != NULL;
      if (layered != (round == 1))
        continue;
      struct lg_storage *base = NULL;
      L->is_base = false;
      if (layered) {
        base = bref ? find_storage(m, bref) : NULL;
        if (!base) {
          load_error(L, "storage_objects[%zu].base: %s%s%s; it must be \"/backstores/"
                     "<plugin>/<name>\" of a storage object without a base", i,
                     bref ? "\"" : "not a string", bref ? bref : "",
                     bref ? "\" names no such storage object" : "");
          return -1;
        }
      } else {
        /* opened read-only when some cow uses it as its base */
        char ref[300];
        snprintf(ref, sizeof ref, "/backstores/%s/%s",
                 json_string_value(json_object_get(j, "plugin")),
                 json_string_value(json_object_get(j, "name")));
        size_t k;
        json_t *o;
        json_array_foreach(arr, k, o) {
          const char *b = json_string_value(json_object_get(o, "base"));
          if (b && !strcmp(b, ref))
            L->is_base = true;
        }
      }
      if (open_storage(L, m, j, i, base) < 0)
        return -1;
    }
  }
  return 0;
}

static int get_index(struct loader *L, const json_t *j, const char *key,
                     const char *where, uint64_t max, uint64_t *out)
{
  json_t *v = json_object_get(j, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (uint64_t)json_integer_value(v) > max) {
    load_error(L, "%s.%s: missing or not an integer from 0 to %llu", where, key,
               (unsigned long long)max);
    return -1;
  }
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static char *dup_str(const json_t *j, const char *key)
{
  const char *s = json_string_value(json_object_get(j, key));
  return s && *s ? strdup(s) : NULL;
}

/* CHAP keys "<prefix>userid", "<prefix>password", "<prefix>mutual_userid",
 * "<prefix>mutual_password" (rtslib: "chap_", or "discovery_" in
 * fabric_modules).  iPXE and Windows need secrets of 12 to 16 bytes. */
static int load_chap(struct loader *L, const json_t *j, const char *prefix, const char *where,
                     struct lg_chap *c)
{
  static const char *const names[] = { "userid", "password", "mutual_userid", "mutual_password" };
  char **fields[] = { &c->userid, &c->password, &c->mutual_userid, &c->mutual_password };
  for (int i = 0; i < 4; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "" : "chap_", names[i]);
    *fields[i] = dup_str(j, key);
  }
  const char *pw_key = *prefix ? "password" : "chap_password";
  for (int i = 0; i < 2; i++) {
    const char *user = i ? c->mutual_userid : c->userid;
    const char *pw = i ? c->mutual_password : c->password;
    if (!user != !pw) {
      load_error(L, "%s: %s%s%s and its %s%s go together; give both or neither", where,
                 *prefix ? prefix : "chap_", i ? "mutual_" : "", "userid",
                 i ? "mutual_" : "", pw_key);
      return -1;
    }
    if (pw && strlen(pw) < 12) {
      load_error(L, "%s: the CHAP %ssecret of \"%s\" is %zu bytes; use 12 to 16 (iPXE and "
                 "Windows initiators refuse shorter ones)", where, i ? "mutual " : "", user,
                 strlen(pw));
      return -1;
    }
  }
  if (c->mutual_userid && !c->userid) {
    load_error(L, "%s: mutual CHAP needs the one-way %suserid and %s as well", where,
               *prefix ? prefix : "chap_", pw_key);
    return -1;
  }
  return 0;
}

/* allowed_addresses: a list of CIDR blocks ("192.168.10.0/24", "fd00::/8"). */
static int load_allowed(struct loader *L, const json_t *j, const char *where,
                        struct lg_cidr **out, size_t *n)
{
  json_t *arr = json_object_get(j, "allowed_addresses"), *v;
  size_t i;
  if (!arr)
    return 0;
  if (!json_is_array(arr) || !(*out = calloc(json_array_size(arr) + 1, sizeof **out))) {
    load_error(L, "%s.allowed_addresses: must be a list such as [\"192.168.10.0/24\"]", where);
    return -1;
  }
  json_array_foreach(arr, i, v) {
    const char *s = json_string_value(v);
    if (!s || lg_cidr_parse(s, &(*out)[*n]) < 0) {
      load_error(L, "%s.allowed_addresses[%zu]: \"%s\" is not an address or CIDR block "
                 "(e.g. 192.168.10.0/24, fd00::/8)", where, i, s ? s : "");
      return -1;
    }
    (*n)++;
  }
  return 0;
}

/* NOP-In pings: lungate's own TPG attributes, off unless given (iPXE never
 * answers a ping).  LIO keeps its nopin_* attributes per node ACL, where
 * targetcli always writes its defaults; those are kept but not used. */
static int load_nopin(struct loader *L, const json_t *attrs, const char *where,
                      struct lg_tpg *tpg)
{
  static const char *const keys[] = { "nopin_timeout", "nopin_response_timeout" };
  unsigned *out[] = { &tpg->nopin_timeout, &tpg->nopin_response_timeout };
  char w[160];
  snprintf(w, sizeof w, "%s.attributes", where);
  for (size_t i = 0; i < 2; i++) {
    uint64_t v = 0;
    if (json_object_get(attrs, keys[i]) && get_index(L, attrs, keys[i], w, 3600, &v) < 0)
      return -1;
    *out[i] = (unsigned)v;
  }
  return 0;
}

static int load_tpg(struct loader *L, struct lg_model *m, struct lg_tpg *tpg,
                    const json_t *j, const char *where)
{
  char w[160];
  uint64_t tag = 1;
  if (json_object_get(j, "tag") && get_index(L, j, "tag", where, 65535, &tag) < 0)
    return -1;
  tpg->tag = (uint16_t)tag;
  json_t *en = json_object_get(j, "enable");
  tpg->enable = en ? json_truthy(en) : true;
  json_t *attrs = json_object_get(j, "attributes");
  tpg->generate_node_acls = json_truthy(json_object_get(attrs, "generate_node_acls"));
  tpg->authentication = json_truthy(json_object_get(attrs, "authentication"));
  tpg->demo_mode_write_protect = json_truthy(json_object_get(attrs, "demo_mode_write_protect"));
  if (load_nopin(L, attrs, where, tpg) < 0)
    return -1;
  if (load_chap(L, j, "", where, &tpg->chap) < 0 ||
      load_allowed(L, j, where, &tpg->allowed, &tpg->n_allowed) < 0)
    return -1;
  lg_params_default(&tpg->params);
  json_t *params = json_object_get(j, "parameters");
  if (params) {
    snprintf(w, sizeof w, "%s.parameters", where);
    load_params(L, params, w, &tpg->params);
  }

  json_t *portals = json_object_get(j, "portals"), *pj;
  size_t i;
  tpg->portals = calloc(json_array_size(portals) + 1, sizeof *tpg->portals);
  if (!tpg->portals)
    return -1;
  json_array_foreach(portals, i, pj) {
    snprintf(w, sizeof w, "%s.portals[%zu]", where, i);
    const char *ip = json_string_value(json_object_get(pj, "ip_address"));
    uint64_t port = 3260;
    if (!ip) {
      load_error(L, "%s.ip_address: missing; use \"0.0.0.0\" for every IPv4 "
                 "address or \"[::]\" for every address", w);
      return -1;
    }
    if (json_object_get(pj, "port") && get_index(L, pj, "port", w, 65535, &port) < 0)
      return -1;
    if (json_is_true(json_object_get(pj, "iser"))) {
      load_error(L, "%s.iser: iSER (RDMA) is not supported by lungate; set it to "
                 "false to serve this portal over TCP", w);
      return -1;
    }
    tpg->portals[tpg->n_portals].ip = strdup(ip);
    tpg->portals[tpg->n_portals++].port = (uint16_t)port;
  }

  json_t *luns = json_object_get(j, "luns"), *lj;
  tpg->luns = calloc(json_array_size(luns) + 1, sizeof *tpg->luns);
  if (!tpg->luns)
    return -1;
  json_array_foreach(luns, i, lj) {
    snprintf(w, sizeof w, "%s.luns[%zu]", where, i);
    uint64_t index;
    if (get_index(L, lj, "index", w, 16383, &index) < 0)
      return -1;
    const char *ref = json_string_value(json_object_get(lj, "storage_object"));
    struct lg_storage *so = ref ? find_storage(m, ref) : NULL;
    if (!so) {
      load_error(L, "%s.storage_object: %s%s%s; it must be \"/backstores/<plugin>/"
                 "<name>\" of an entry in storage_objects", w,
                 ref ? "\"" : "missing", ref ? ref : "", ref ? "\" names no storage object" : "");
      return -1;
    }
    for (size_t k = 0; k < tpg->n_luns; k++)
      if (tpg->luns[k].index == index) {
        load_error(L, "%s.index: LUN %llu is defined twice", w, (unsigned long long)index);
        return -1;
      }
    tpg->luns[tpg->n_luns].index = index;
    tpg->luns[tpg->n_luns++].so = so;
  }

  json_t *acls = json_object_get(j, "node_acls"), *aj;
  tpg->acls = calloc(json_array_size(acls) + 1, sizeof *tpg->acls);
  if (!tpg->acls)
    return -1;
  json_array_foreach(acls, i, aj) {
    snprintf(w, sizeof w, "%s.node_acls[%zu]", where, i);
    struct lg_acl *acl = &tpg->acls[tpg->n_acls];
    acl->node_wwn = dup_str(aj, "node_wwn");
    if (!acl->node_wwn) {
      load_error(L, "%s.node_wwn: missing; give the initiator's IQN or a pattern "
                 "such as \"iqn.2025-10.org.school:*\"", w);
      return -1;
    }
    tpg->n_acls++;
    if (load_chap(L, aj, "", w, &acl->chap) < 0 ||
        load_allowed(L, aj, w, &acl->allowed, &acl->n_allowed) < 0)
      return -1;
    json_t *ml = json_object_get(aj, "mapped_luns"), *mj;
    size_t k;
    acl->mapped = calloc(json_array_size(ml) + 1, sizeof *acl->mapped);
    if (!acl->mapped)
      return -1;
    json_array_foreach(ml, k, mj) {
      char w2[200];
      snprintf(w2, sizeof w2, "%s.mapped_luns[%zu]", w, k);
      struct lg_mapped_lun *mp = &acl->mapped[acl->n_mapped];
      if (get_index(L, mj, "index", w2, 16383, &mp->index) < 0 ||
          get_index(L, mj, "tpg_lun", w2, 16383, &mp->tpg_lun) < 0)
        return -1;
      size_t t;
      for (t = 0; t < tpg->n_luns && tpg->luns[t].index != mp->tpg_lun; t++)
        ;
      if (t == tpg->n_luns) {
        load_error(L, "%s.tpg_lun: the TPG has no LUN %llu", w2,
                   (unsigned long long)mp->tpg_lun);
        return -1;
      }
      mp->write_protect = json_truthy(json_object_get(mj, "write_protect"));
      acl->n_mapped++;
    }
  }
  return 0;
}

static int load_targets(struct loader *L, struct lg_model *m, const json_t *arr)
{
  if (!arr)
    return 0;
  if (!json_is_array(arr)) {
    load_error(L, "targets: must be an array of targets");
    return -1;
  }
  m->targets = calloc(json_array_size(arr) + 1, sizeof *m->targets);
  if (!m->targets)
    return -1;
  size_t i;
  json_t *j;
  json_array_foreach(arr, i, j) {
    char w[96];
    snprintf(w, sizeof w, "targets[%zu]", i);
    const char *fabric = json_string_value(json_object_get(j, "fabric"));
    if (fabric && strcmp(fabric, "iscsi"))
      continue; /* other fabrics (loopback, vhost...) are kept but not served */
    const char *wwn = json_string_value(json_object_get(j, "wwn"));
    if (!wwn || (strncasecmp(wwn, "iqn.", 4) && strncasecmp(wwn, "eui.", 4) &&
                 strncasecmp(wwn, "naa.", 4))) {
      load_error(L, "%s.wwn: missing or not an iSCSI name; give the target IQN, "
                 "e.g. \"iqn.2025-10.org.school:freedos\"", w);
      return -1;
    }
    for (size_t k = 0; k < m->n_targets; k++)
      if (!strcasecmp(m->targets[k].iqn, wwn)) {
        load_error(L, "%s.wwn: target \"%s\" is defined twice", w, wwn);
        return -1;
      }
    struct lg_target *t = &m->targets[m->n_targets++];
    t->iqn = strdup(wwn);
    json_t *tpgs = json_object_get(j, "tpgs"), *tj;
    size_t k;
    if (!json_is_array(tpgs) || json_array_size(tpgs) == 0) {
      load_error(L, "%s.tpgs: missing or empty; a target needs a TPG with its "
                 "portals and LUNs", w);
      return -1;
    }
    t->tpgs = calloc(json_array_size(tpgs), sizeof *t->tpgs);
    if (!t->tpgs)
      return -1;
    json_array_foreach(tpgs, k, tj) {
      char w2[128];
      snprintf(w2, sizeof w2, "%s.tpgs[%zu]", w, k);
      if (load_tpg(L, m, &t->tpgs[t->n_tpgs++], tj, w2) < 0)
        return -1;
    }
  }
  return 0;
}

/* fabric_modules[]: the iscsi entry's discovery authentication. */
static int load_fabric(struct loader *L, struct lg_model *m, const json_t *arr)
{
  size_t i;
  json_t *f;
  json_array_foreach(arr, i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!name || strcmp(name, "iscsi"))
      continue;
    char w[64];
    snprintf(w, sizeof w, "fabric_modules[%zu]", i);
    m->discovery_auth = json_truthy(json_object_get(f, "discovery_enable_auth"));
    if (load_chap(L, f, "discovery_", w, &m->discovery_chap) < 0)
      return -1;
    if (m->discovery_auth && !m->discovery_chap.userid) {
      load_error(L, "%s.discovery_enable_auth: set, but discovery_userid and "
                 "discovery_password are missing", w);
      return -1;
    }
  }
  return 0;
}

static struct lg_model *model_load(const json_t *config, const char *path,
                                   const struct lg_model *prev, char **err)
{
  struct loader L = { .file = path ? path : "(built-in config)", .prev = prev };
  char dirbuf[PATH_MAX];
  if (path) {
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    L.config_dir = dirname(dirbuf);
  }
  struct lg_model *m = calloc(1, sizeof *m);
  if (!m) {
    *err = strdup("out of memory");
    return NULL;
  }
  atomic_init(&m->refs, 1);
  m->generation = prev ? prev->generation + 1 : 1;
  m->json = json_deep_copy(config);
  m->path = path ? strdup(path) : NULL;
  if (!json_is_object(config))
    load_error(&L, "the top level must be a JSON object with \"storage_objects\" "
               "and \"targets\"");
  else if (load_storage(&L, m, json_object_get(config, "storage_objects")) == 0 &&
           load_targets(&L, m, json_object_get(config, "targets")) == 0)
    load_fabric(&L, m, json_object_get(config, "fabric_modules"));
  for (size_t i = 0; i < L.n_staged; i++) /* all or nothing */
    cow_versions_finish(L.staged[i]->h, !L.err);
  free(L.staged);
  if (L.err) {
    *err = L.err;
    lg_model_unref(m);
    return NULL;
  }
  return m;
}

struct lg_model *lg_model_load(const json_t *config, const char *path, char **err)
{
  return model_load(config, path, NULL, err);
}

struct lg_model *lg_model_reload_json(const json_t *config, const char *path,
                                      const struct lg_model *prev, char **err)
{
  return model_load(config, path, prev, err);
}

struct lg_model *lg_model_reload_file(const char *path, const struct lg_model *prev,
                                      char **err)
{
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    if (je.line < 0) {
      if (asprintf(err, "%s: cannot read the config: %s", path, je.text) < 0)
        *err = NULL;
    } else if (asprintf(err, "%s:%d:%d: not valid JSON: %s", path, je.line,
                        je.column, je.text) < 0) {
      *err = NULL;
    }
    return NULL;
  }
  struct lg_model *m = model_load(j, path, prev, err);
  json_decref(j);
  return m;
}

struct lg_model *lg_model_load_file(const char *path, char **err)
{
  return lg_model_reload_file(path, NULL, err);
}

int lg_model_save(const struct lg_model *m, const char *path)
{
  return lg_json_save(m->json, path);
}

int lg_json_save(const json_t *config, const char *path)
{
  char *tmp = NULL, dirbuf[PATH_MAX];
  if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
    return -ENOMEM;
  int fd = mkstemp(tmp); /* 0600 */
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return -e;
  }
  int r = 0;
  char *text = json_dumps(config, JSON_INDENT(2));
  size_t len = text ? strlen(text) : 0;
  if (!text)
    r = -ENOMEM;
  for (size_t off = 0; r == 0 && off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0)
      r = -errno;
    else
      off += (size_t)n;
  }
  if (r == 0 && (write(fd, "\n", 1) != 1 || fchmod(fd, 0600) < 0 || fsync(fd) < 0))
    r = -errno;
  if (close(fd) < 0 && r == 0)
    r = -errno;
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0) {
    unlink(tmp);
  } else { /* the rename itself is durable once the directory is synced */
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  free(text);
  free(tmp);
  return r;
}

void lg_model_ref(struct lg_model *m) { atomic_fetch_add(&m->refs, 1); }

static void free_chap(struct lg_chap *c)
{
  free(c->userid);
  free(c->password);
  free(c->mutual_userid);
  free(c->mutual_password);
}

static void free_tpg(struct lg_tpg *tpg)
{
  free_chap(&tpg->chap);
  free(tpg->allowed);
  for (size_t i = 0; i < tpg->n_portals; i++)
    free(tpg->portals[i].ip);
  free(tpg->portals);
  free(tpg->luns);
  for (size_t i = 0; i < tpg->n_acls; i++) {
    struct lg_acl *a = &tpg->acls[i];
    free(a->node_wwn);
    free(a->mapped);
    free_chap(&a->chap);
    free(a->allowed);
  }
  free(tpg->acls);
}

void lg_model_unref(struct lg_model *m)
{
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
    return;
  for (size_t i = 0; i < m->n_targets; i++) {
    for (size_t k = 0; k < m->targets[i].n_tpgs; k++)
      free_tpg(&m->targets[i].tpgs[k]);
    free(m->targets[i].tpgs);
    free(m->targets[i].iqn);
  }
  free(m->targets);
  for (size_t i = m->n_storage; i-- > 0;) /* layered objects before their bases */
    storage_unref(m->storage[i]);
  free(m->storage);
  free_chap(&m->discovery_chap);
  json_decref(m->json);
  free(m->path);
  free(m);
}
