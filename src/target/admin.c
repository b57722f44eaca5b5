/* targetcli's object commands and `ls` tree on a config (see admin.h).
 *
 * A command resolves its path to a node of the config (a backstore plugin,
 * a storage object, a target, a TPG, its luns/acls/portals groups, a LUN, an
 * ACL, a mapped LUN, a portal), then works on a deep copy of the config,
 * which the caller gets only when everything succeeded: nothing is ever
 * half-applied.  The defaults are targetcli's: a new target gets tpg1 and a
 * portal, a new LUN the next free number, a new ACL a mapping of every LUN. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "lungate/backstore.h"
#include "target/admin.h"

#define MAX_ARGS 16

/* ---- small helpers ---- */

static int fail(char **msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **msg, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(msg, fmt, ap) < 0)
    *msg = NULL;
  va_end(ap);
  return -1;
}

/* Text output, grown as lines are added. */
struct out {
  char *buf;
  size_t len, cap;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if (o->len + (size_t)n + 1 > o->cap) {
    size_t cap = (o->len + (size_t)n + 1) * 2;
    char *p = realloc(o->buf, cap);
    if (!p) {
      free(s);
      return;
    }
    o->buf = p;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, (size_t)n + 1);
  o->len += (size_t)n;
  free(s);
}

/* The text without its last newline (malloc'd, never NULL unless out of memory). */
static char *out_take(struct out *o)
{
  if (!o->buf)
    return strdup("");
  if (o->len && o->buf[o->len - 1] == '\n')
    o->buf[--o->len] = '\0';
  return o->buf;
}

static const char *jstr(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

/* true for JSON true, non-zero numbers and "1"/"yes"/"true" (rtslib's forms) */
static bool truthy(const json_t *v, bool dflt)
{
  if (!v)
    return dflt;
  if (json_is_boolean(v))
    return json_is_true(v);
  if (json_is_integer(v))
    return json_integer_value(v) != 0;
  const char *s = json_string_value(v);
  return s && (!strcasecmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true"));
}

/* "true"/"false"/"yes"/"no"/"1"/"0"/"on"/"off": 1/0, else -1. */
static int parse_bool(const char *s)
{
  if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1") || !strcasecmp(s, "on"))
    return 1;
  if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0") || !strcasecmp(s, "off"))
    return 0;
  return -1;
}

static bool parse_u64(const char *s, unsigned long long *v)
{
  char *end;
  if (!*s || !isdigit((unsigned char)*s))
    return false;
  errno = 0;
  *v = strtoull(s, &end, 10);
  return !errno && !*end;
}

/* targetcli's sizes: bytes, or a number with K, M, G, T (binary, optional B). */
static bool parse_size(const char *s, unsigned long long *v)
{
  char *end;
  if (!*s || !isdigit((unsigned char)*s))
    return false;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno)
    return false;
  int shift = 0;
  switch (toupper((unsigned char)*end)) {
  case '\0': break;
  case 'K': shift = 10; end++; break;
  case 'M': shift = 20; end++; break;
  case 'G': shift = 30; end++; break;
  case 'T': shift = 40; end++; break;
  default: return false;
  }
  if (shift && (*end == 'B' || *end == 'b'))
    end++;
  if (*end || (shift && n > (ULLONG_MAX >> shift)))
    return false;
  *v = n << shift;
  return true;
}

/* A value typed as rtslib writes it: a number when it is one, else a string. */
static json_t *typed_value(const char *v)
{
  unsigned long long n;
  if (parse_u64(v, &n) && n <= (unsigned long long)INT64_MAX)
    return json_integer((json_int_t)n);
  return json_string(v);
}

/* "lun3", "3" -> 3 (prefix: "lun", "tpg", "mapped_lun"). */
static bool parse_index(const char *s, const char *prefix, unsigned long long max,
                        unsigned long long *v)
{
  size_t pl = strlen(prefix);
  if (!strncasecmp(s, prefix, pl))
    s += pl;
  return parse_u64(s, v) && *v <= max;
}

/* An absolute path: as given, or against cwd. */
static char *abs_path(const struct lg_admin_ctx *ctx, const char *p)
{
  char *r;
  if (*p == '/' || !ctx || !ctx->cwd)
    return strdup(p);
  if (asprintf(&r, "%s/%s", ctx->cwd, p) < 0)
    return NULL;
  return r;
}

/* ---- arguments: positional, then key=value ---- */

struct args {
  const char *const *names;        /* the command's parameters, in order */
  size_t n;
  const char *val[MAX_ARGS];       /* by parameter; NULL: not given */
  json_t *extra;                   /* other key=value pairs, when allowed */
};

static void usage_of(const char *verb, const struct args *a, size_t required, char *buf,
                     size_t len)
{
  size_t used = (size_t)snprintf(buf, len, "%s", verb);
  for (size_t i = 0; i < a->n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, i < required ? " %s" : " [%s]",
                             a->names[i]);
}

/* Fill a->val from argv; extra keys go to a->extra when it is non-NULL. */
static int parse_args(struct args *a, const char *verb, size_t required, size_t argc,
                      const char *const *argv, char **msg)
{
  char usage[256];
  usage_of(verb, a, required, usage, sizeof usage);
  size_t pos = 0;
  bool keyword_seen = false;
  for (size_t i = 0; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    bool is_kw = false;
    if (eq && eq != argv[i]) {
      is_kw = true;
      for (const char *p = argv[i]; p < eq; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
          is_kw = false;
    }
    if (!is_kw) {
      if (keyword_seen)
        return fail(msg, "%s: \"%s\": positional parameters come before key=value ones "
                    "(usage: %s)", verb, argv[i], usage);
      if (pos >= a->n)
        return fail(msg, "%s: too many parameters at \"%s\" (usage: %s)", verb, argv[i], usage);
      a->val[pos++] = argv[i];
      continue;
    }
    keyword_seen = true;
    size_t kl = (size_t)(eq - argv[i]);
    size_t k;
    for (k = 0; k < a->n && (strlen(a->names[k]) != kl || strncmp(a->names[k], argv[i], kl)); k++)
      ;
    if (k < a->n) {
      if (a->val[k])
        return fail(msg, "%s: parameter %s is given twice", verb, a->names[k]);
      a->val[k] = eq + 1;
    } else if (a->extra) {
      char key[64];
      snprintf(key, sizeof key, "%.*s", (int)kl, argv[i]);
      json_object_set_new(a->extra, key, typed_value(eq + 1));
    } else {
      return fail(msg, "%s: unknown parameter \"%.*s\" (usage: %s)", verb, (int)kl, argv[i],
                  usage);
    }
  }
  for (size_t k = 0; k < required; k++)
    if (!a->val[k])
      return fail(msg, "%s: missing parameter %s (usage: %s)", verb, a->names[k], usage);
  return 0;
}

static int arg_bool(const struct args *a, size_t k, bool dflt, bool *v, char **msg)
{
  if (!a->val[k]) {
    *v = dflt;
    return 0;
  }
  int b = parse_bool(a->val[k]);
  if (b < 0)
    return fail(msg, "%s=%s: give true or false", a->names[k], a->val[k]);
  *v = b;
  return 0;
}

/* ---- the config's objects ---- */

static json_t *array_member(json_t *o, const char *key)
{
  json_t *a = json_object_get(o, key);
  if (!json_is_array(a)) {
    a = json_array();
    json_object_set_new(o, key, a);
  }
  return a;
}

static json_t *object_member(json_t *o, const char *key)
{
  json_t *a = json_object_get(o, key);
  if (!json_is_object(a)) {
    a = json_object();
    json_object_set_new(o, key, a);
  }
  return a;
}

static json_t *so_find(const json_t *cfg, const char *plugin, const char *name)
{
  size_t i;
  json_t *so;
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, so) {
    const char *p = jstr(so, "plugin"), *n = jstr(so, "name");
    if (n && !strcmp(n, name) && (!plugin || (p && !strcmp(p, plugin))))
      return so;
  }
  return NULL;
}

static bool is_iscsi_target(const json_t *t)
{
  const char *fabric = jstr(t, "fabric");
  return !fabric || !strcmp(fabric, "iscsi");
}

static json_t *target_find(const json_t *cfg, const char *iqn)
{
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(cfg, "targets"), i, t) {
    const char *w = jstr(t, "wwn");
    if (w && is_iscsi_target(t) && !strcasecmp(w, iqn))
      return t;
  }
  return NULL;
}

static long long jint(const json_t *o, const char *k, long long dflt)
{
  json_t *v = json_object_get(o, k);
  if (json_is_integer(v))
    return (long long)json_integer_value(v);
  if (json_is_string(v)) {
    unsigned long long n;
    if (parse_u64(json_string_value(v), &n))
      return (long long)n;
  }
  return dflt;
}

static json_t *tpg_find(const json_t *t, unsigned long long tag)
{
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(t, "tpgs"), i, g)
    if ((unsigned long long)jint(g, "tag", 1) == tag)
      return g;
  return NULL;
}

static json_t *by_index(const json_t *arr, const char *key, unsigned long long index)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
    if (jint(v, key, -1) == (long long)index)
      return v;
  return NULL;
}

static json_t *acl_find(const json_t *tpg, const char *wwn)
{
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(tpg, "node_acls"), i, a) {
    const char *w = jstr(a, "node_wwn");
    if (w && !strcasecmp(w, wwn))
      return a;
  }
  return NULL;
}

/* "IP:PORT", IPv6 in brackets. */
static void portal_name(const json_t *p, char *buf, size_t len)
{
  const char *ip = jstr(p, "ip_address");
  if (!ip)
    ip = "?";
  bool v6 = strchr(ip, ':') && ip[0] != '[';
  snprintf(buf, len, v6 ? "[%s]:%lld" : "%s:%lld", ip, jint(p, "port", 3260));
}

static json_t *portal_find(const json_t *tpg, const char *name)
{
  size_t i;
  json_t *p;
  char buf[128];
  json_array_foreach(json_object_get(tpg, "portals"), i, p) {
    portal_name(p, buf, sizeof buf);
    if (!strcasecmp(buf, name))
      return p;
  }
  return NULL;
}

static bool array_remove(json_t *arr, const json_t *v)
{
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x)
    if (x == v)
      return json_array_remove(arr, i) == 0;
  return false;
}

/* The plugins /backstores shows: lungate's, and any other one the config uses. */
static const char *const known_plugins[] = { "block", "cow", "fileio", "nbd", "qcow2", "rbd" };
#define N_KNOWN (sizeof known_plugins / sizeof known_plugins[0])

static bool plugin_shown(const json_t *cfg, const char *plugin)
{
  for (size_t i = 0; i < N_KNOWN; i++)
    if (!strcmp(known_plugins[i], plugin))
      return strcmp(plugin, "rbd") || lg_backstore_find("rbd");
  size_t i;
  json_t *so;
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, so)
    if (jstr(so, "plugin") && !strcmp(jstr(so, "plugin"), plugin))
      return true;
  return false;
}

/* ---- paths ---- */

enum kind {
  K_ROOT, K_BACKSTORES, K_PLUGIN, K_SO, K_ISCSI, K_TARGET, K_TPG, K_LUNS, K_ACLS,
  K_PORTALS, K_LUN, K_ACL, K_MAPPED, K_PORTAL,
};

struct node {
  enum kind kind;
  char plugin[64];
  json_t *so, *target, *tpg, *lun, *acl, *mapped, *portal;
  char path[1024];                 /* normalized */
};

/* Resolve a targetcli path in cfg. */
static int resolve(json_t *cfg, const char *path, struct node *n, char **msg)
{
  memset(n, 0, sizeof *n);
  if (!path || *path != '/')
    return fail(msg, "\"%s\": a path starts with / (/backstores/fileio, /iscsi, "
                "/iscsi/IQN/tpg1/luns, ...; lungate ls shows the tree)", path ? path : "");
  char buf[1024], *comp[8], *save = NULL;
  size_t nc = 0;
  if (strlen(path) >= sizeof buf)
    return fail(msg, "No such path %.64s...: too long", path);
  snprintf(buf, sizeof buf, "%s", path);
  for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (nc == 8)
      return fail(msg, "No such path %s", path);
    comp[nc++] = c;
  }
  size_t used = 0;
  n->path[0] = '\0';
  for (size_t i = 0; i < nc; i++)
    used += (size_t)snprintf(n->path + used, sizeof n->path - used, "/%s", comp[i]);
  if (!nc)
    snprintf(n->path, sizeof n->path, "/");
#define NOPATH(...) do { fail(msg, "No such path %s: " __VA_ARGS__); return -1; } while (0)
  n->kind = K_ROOT;
  if (nc == 0)
    return 0;
  if (!strcmp(comp[0], "backstores")) {
    n->kind = K_BACKSTORES;
    if (nc == 1)
      return 0;
    if (!plugin_shown(cfg, comp[1]))
      NOPATH("no backstore \"%s\" (lungate has block, cow, fileio, nbd, qcow2 and rbd)", n->path,
             comp[1]);
    snprintf(n->plugin, sizeof n->plugin, "%s", comp[1]);
    n->kind = K_PLUGIN;
    if (nc == 2)
      return 0;
    if (!(n->so = so_find(cfg, comp[1], comp[2])))
      NOPATH("no storage object %s/%s (lungate ls /backstores lists them)", n->path,
             comp[1], comp[2]);
    n->kind = K_SO;
    if (nc == 3)
      return 0;
    NOPATH("a storage object has nothing below it here", n->path);
  }
  if (strcmp(comp[0], "iscsi"))
    NOPATH("lungate has /backstores and /iscsi", n->path);
  n->kind = K_ISCSI;
  if (nc == 1)
    return 0;
  if (!(n->target = target_find(cfg, comp[1])))
    NOPATH("no target %s (lungate ls /iscsi lists them)", n->path, comp[1]);
  n->kind = K_TARGET;
  if (nc == 2)
    return 0;
  unsigned long long tag;
  if (strncasecmp(comp[2], "tpg", 3) || !parse_index(comp[2], "tpg", 65535, &tag) ||
      !(n->tpg = tpg_find(n->target, tag)))
    NOPATH("target %s has no %s (its TPGs are tpg1, ...)", n->path, comp[1], comp[2]);
  n->kind = K_TPG;
  if (nc == 3)
    return 0;
  if (!strcmp(comp[3], "luns"))
    n->kind = K_LUNS;
  else if (!strcmp(comp[3], "acls"))
    n->kind = K_ACLS;
  else if (!strcmp(comp[3], "portals"))
    n->kind = K_PORTALS;
  else
    NOPATH("a TPG has acls, luns and portals", n->path);
  if (nc == 4)
    return 0;
  unsigned long long idx;
  if (n->kind == K_LUNS) {
    if (!parse_index(comp[4], "lun", 16383, &idx) ||
        !(n->lun = by_index(json_object_get(n->tpg, "luns"), "index", idx)))
      NOPATH("%s has no LUN %s", n->path, comp[2], comp[4]);
    n->kind = K_LUN;
  } else if (n->kind == K_PORTALS) {
    if (!(n->portal = portal_find(n->tpg, comp[4])))
      NOPATH("%s has no portal %s", n->path, comp[2], comp[4]);
    n->kind = K_PORTAL;
  } else {
    if (!(n->acl = acl_find(n->tpg, comp[4])))
      NOPATH("%s has no ACL for %s", n->path, comp[2], comp[4]);
    n->kind = K_ACL;
    if (nc == 6) {
      if (!parse_index(comp[5], "mapped_lun", 16383, &idx) ||
          !(n->mapped = by_index(json_object_get(n->acl, "mapped_luns"), "index", idx)))
        NOPATH("the ACL %s has no %s", n->path, comp[4], comp[5]);
      n->kind = K_MAPPED;
      return 0;
    }
  }
  if (nc == 5)
    return 0;
  NOPATH("nothing is below %s", n->path, comp[4]);
#undef NOPATH
}

/* ---- backstores ---- */

/* The LUNs that use a storage object, as text ("LUN 0 of IQN tpg1"), and the
 * path of the first. */
static bool so_users(const json_t *cfg, const char *plugin, const char *name, char *what,
                     size_t len, char *first, size_t flen)
{
  char ref[512];
  snprintf(ref, sizeof ref, "/backstores/%s/%s", plugin, name);
  size_t i, k, l;
  json_t *t, *g, *lun, *so;
  bool used = false;
  *what = '\0';
  json_array_foreach(json_object_get(cfg, "targets"), i, t)
    json_array_foreach(json_object_get(t, "tpgs"), k, g)
      json_array_foreach(json_object_get(g, "luns"), l, lun) {
        const char *r = jstr(lun, "storage_object");
        if (!r || strcmp(r, ref))
          continue;
        if (!used)
          snprintf(first, flen, "/iscsi/%s/tpg%lld/luns delete lun%lld", jstr(t, "wwn"),
                   jint(g, "tag", 1), jint(lun, "index", 0));
        size_t u = strlen(what);
        snprintf(what + u, len - u, "%sLUN %lld of %s/tpg%lld", used ? ", " : "",
                 jint(lun, "index", 0), jstr(t, "wwn"), jint(g, "tag", 1));
        used = true;
      }
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, so) {
    const char *base = jstr(so, "base");
    if (!base || strcmp(base, ref))
      continue;
    if (!used)
      snprintf(first, flen, "/backstores/%s delete %s", jstr(so, "plugin"), jstr(so, "name"));
    size_t u = strlen(what);
    snprintf(what + u, len - u, "%sthe base of %s/%s", used ? ", " : "", jstr(so, "plugin"),
             jstr(so, "name"));
    used = true;
  }
  return used;
}

/* Which of a plugin's parameters go to which config key, and their type. */
struct so_param {
  const char *name;                /* targetcli's parameter */
  const char *key;                 /* the config key; NULL: not kept */
  char type;                       /* 's' string, 'p' path, 'b' bool, 'z' size, 'n' number, 'l' list (a,b) */
};

struct so_plugin {
  const char *plugin;
  size_t required;                 /* leading parameters that must be given */
  struct so_param params[12];
};

static const struct so_plugin so_plugins[] = {
  { "fileio", 2, { { "name", "name", 's' }, { "file_or_dev", "dev", 'p' }, { "size", "size", 'z' },
                   { "write_back", "write_back", 'b' }, { "sparse", NULL, 'b' },
                   { "wwn", "wwn", 's' }, { "readonly", "readonly", 'b' } } },
  { "block", 2, { { "name", "name", 's' }, { "dev", "dev", 'p' }, { "readonly", "readonly", 'b' },
                  { "wwn", "wwn", 's' } } },
  { "qcow2", 2, { { "name", "name", 's' }, { "dev", "dev", 'p' }, { "format", "format", 's' },
                  { "readonly", "readonly", 'b' }, { "wwn", "wwn", 's' } } },
  { "nbd", 2, { { "name", "name", 's' }, { "uri", "uri", 's' }, { "timeout", "timeout", 'n' },
                { "connections", "connections", 'n' }, { "readonly", "readonly", 'b' },
                { "wwn", "wwn", 's' } } },
  { "cow", 2, { { "name", "name", 's' }, { "base", "base", 's' },
                { "overlay_dir", "overlay_dir", 'p' }, { "per_initiator", "per_initiator", 'b' },
                { "quota", "quota", 'z' }, { "block_size", "block_size", 'z' },
                { "after_idle", NULL, 'n' }, { "shared_initiators", "shared_initiators", 'b' },
                { "reset", "reset", 's' }, { "maintainers", "maintainers", 'l' },
                { "on_new_version", "on_new_version", 's' }, { "wwn", "wwn", 's' } } },
  { "rbd", 3, { { "name", "name", 's' }, { "pool", "pool", 's' }, { "image", "image", 's' },
                { "snapshot", "snapshot", 's' }, { "conf", "conf", 'p' },
                { "user", "user", 's' }, { "readonly", "readonly", 'b' },
                { "wwn", "wwn", 's' } } },
};

static bool valid_name(const char *s)
{
  if (!*s || strlen(s) > 200)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("-_.:", *s))
      return false;
  return true;
}

static int backstore_create(json_t *cfg, const struct lg_admin_ctx *ctx, const char *plugin,
                            size_t argc, const char *const *argv, struct out *o, char **msg)
{
  const struct so_plugin *sp = NULL;
  for (size_t i = 0; i < sizeof so_plugins / sizeof so_plugins[0]; i++)
    if (!strcmp(so_plugins[i].plugin, plugin))
      sp = &so_plugins[i];
  if (!sp)
    return fail(msg, "/backstores/%s: lungate cannot create %s storage objects; use "
                "/backstores/fileio, block, qcow2, nbd, rbd or cow", plugin, plugin);
  const char *names[MAX_ARGS];
  size_t np = 0;
  while (np < 10 && sp->params[np].name) {
    names[np] = sp->params[np].name;
    np++;
  }
  struct args a = { .names = names, .n = np, .extra = json_object() };
  json_t *so = NULL;
  char *path = NULL;
  int rc = -1;
  char verb[300];
  snprintf(verb, sizeof verb, "/backstores/%s create", plugin);
  if (parse_args(&a, verb, sp->required, argc, argv, msg) < 0)
    goto out;
  const char *name = a.val[0];
  if (!valid_name(name)) {
    fail(msg, "%s: \"%s\" is not a usable name; use letters, digits, - _ . and :", verb, name);
    goto out;
  }
  size_t i;
  json_t *other;
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, other)
    if (jstr(other, "name") && !strcmp(jstr(other, "name"), name)) {
      fail(msg, "Storage object %s/%s exists already; delete it first or choose another "
           "name (lungate names storage objects uniquely across backstores)",
           jstr(other, "plugin") ? jstr(other, "plugin") : "?", name);
      goto out;
    }
  so = json_pack("{s:s,s:s}", "plugin", plugin, "name", name);
  for (size_t k = 1; k < np; k++) {
    const struct so_param *p = &sp->params[k];
    const char *v = a.val[k];
    if (!v)
      continue;
    if (p->type == 'b') {
      int b = parse_bool(v);
      if (b < 0) {
        fail(msg, "%s: %s=%s: give true or false", verb, p->name, v);
        goto out;
      }
      if (p->key)
        json_object_set_new(so, p->key, json_boolean(b));
    } else if (p->type == 'z' || p->type == 'n') {
      unsigned long long n;
      if (!(p->type == 'z' ? parse_size(v, &n) : parse_u64(v, &n)) || n > INT64_MAX) {
        fail(msg, "%s: %s=%s: give a number%s", verb, p->name, v,
             p->type == 'z' ? " of bytes, or with K, M, G or T (e.g. 10G)" : "");
        goto out;
      }
      if (p->key)
        json_object_set_new(so, p->key, json_integer((json_int_t)n));
      else if (!strcmp(p->name, "after_idle"))
        json_object_set_new(so, "reset", json_pack("{s:I}", "after_idle", (json_int_t)n));
    } else if (p->type == 'l') { /* a comma-separated list of names */
      json_t *list = json_array();
      if (!list)
        goto oom;
      for (const char *q = v; *q;) {
        size_t len = strcspn(q, ",");
        if (len)
          json_array_append_new(list, json_stringn(q, len));
        q += len + (q[len] == ',');
      }
      json_object_set_new(so, p->key, list);
    } else if (p->type == 'p') {
      free(path);
      if (!(path = abs_path(ctx, v)))
        goto oom;
      json_object_set_new(so, p->key, json_string(path));
    } else {
      json_object_set_new(so, p->key, json_string(v));
    }
  }
  json_object_update(so, a.extra); /* lungate's other keys of the plugin, as given */

  const char *dev = jstr(so, "dev");
  struct stat st;
  if (!strcmp(plugin, "fileio")) {
    json_array_foreach(json_object_get(cfg, "storage_objects"), i, other) {
      const char *od = jstr(other, "dev");
      struct stat ost;
      if (od && (!strcmp(od, dev) || (stat(od, &ost) == 0 && stat(dev, &st) == 0 &&
                                      ost.st_dev == st.st_dev && ost.st_ino == st.st_ino))) {
        fail(msg, "storage object for %s already exists: %s", dev, jstr(other, "name"));
        goto out;
      }
    }
    if (stat(dev, &st) == 0 && S_ISREG(st.st_mode)) {
      if (a.val[2])
        outf(o, "%s exists, using its size (%lld bytes) instead\n", dev, (long long)st.st_size);
      json_object_set_new(so, "size", json_integer((json_int_t)st.st_size));
    } else if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) {
      json_object_del(so, "size");
      outf(o, "Note: block backstore preferred for best results\n");
    } else if (stat(dev, &st) == 0) {
      fail(msg, "Path %s exists but is not a file", dev);
      goto out;
    } else if (!a.val[2]) {
      fail(msg, "%s does not exist: give a size to create it (e.g. \"%s create %s %s 1G\"), "
           "or the path of an existing image", dev, verb, name, a.val[1]);
      goto out;
    }
    if (!json_object_get(so, "write_back"))
      json_object_set_new(so, "write_back", json_true());
  } else if (dev && stat(dev, &st) < 0) {
    fail(msg, "%s: %s: %s; give the path of an existing %s", verb, dev, strerror(errno),
         !strcmp(plugin, "block") ? "block device or image" : "image");
    goto out;
  } else if (!strcmp(plugin, "block") && !json_object_get(so, "write_back")) {
    json_object_set_new(so, "write_back", json_false());
  }
  if (!strcmp(plugin, "cow")) {
    const char *base = jstr(so, "base");
    char bp[64], bn[256];
    if (sscanf(base, "/backstores/%63[^/]/%255s", bp, bn) != 2 || !so_find(cfg, bp, bn)) {
      fail(msg, "%s: base=%s names no storage object; give /backstores/PLUGIN/NAME of one "
           "(lungate ls /backstores)", verb, base);
      goto out;
    }
    if (!json_object_get(so, "per_initiator"))
      json_object_set_new(so, "per_initiator", json_true());
    if (!json_object_get(so, "overlay_dir") && !json_object_get(so, "overlay_pool")) {
      fail(msg, "%s: give overlay_dir (a folder for the overlay files) or overlay_pool=POOL "
           "(RBD clones of an rbd base's snapshot)", verb);
      goto out;
    }
  }
  if (!strcmp(plugin, "nbd") && strncmp(jstr(so, "uri"), "nbd", 3)) {
    fail(msg, "%s: uri=%s: give an NBD URI (nbd://HOST[:PORT]/EXPORT or "
         "nbd+unix:///EXPORT?socket=PATH)", verb, jstr(so, "uri"));
    goto out;
  }
  json_array_append(array_member(cfg, "storage_objects"), so);
  if (!strcmp(plugin, "fileio"))
    outf(o, "Created fileio %s with size %lld.", name, jint(so, "size", 0));
  else if (dev)
    outf(o, "Created %s storage object %s using %s.", plugin, name, dev);
  else
    outf(o, "Created %s storage object %s.", plugin, name);
  rc = 0;
  goto out;
oom:
  fail(msg, "out of memory");
out:
  free(path);
  json_decref(so);
  json_decref(a.extra);
  return rc;
}

static int backstore_delete(json_t *cfg, const char *plugin, size_t argc,
                            const char *const *argv, struct out *o, char **msg)
{
  const char *names[] = { "name" };
  struct args a = { .names = names, .n = 1 };
  char verb[200];
  snprintf(verb, sizeof verb, "/backstores/%s delete", plugin);
  if (parse_args(&a, verb, 1, argc, argv, msg) < 0)
    return -1;
  json_t *so = so_find(cfg, plugin, a.val[0]);
  if (!so)
    return fail(msg, "No storage object named %s in /backstores/%s (lungate ls /backstores "
                "lists them)", a.val[0], plugin);
  char what[1024], first[512];
  if (so_users(cfg, plugin, a.val[0], what, sizeof what, first, sizeof first))
    return fail(msg, "storage object %s/%s is still used by %s; delete that first "
                "(lungate %s)", plugin, a.val[0], what, first);
  array_remove(json_object_get(cfg, "storage_objects"), so);
  outf(o, "Deleted storage object %s.", a.val[0]);
  return 0;
}

/* ---- targets, TPGs ---- */

static bool valid_iscsi_name(const char *s)
{
  size_t n = strlen(s);
  if (n < 5 || n > 223)
    return false;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == '/' || (unsigned char)*p >= 0x7f)
      return false;
  if (!strncasecmp(s, "iqn.", 4))
    return n > 12 && isdigit((unsigned char)s[4]) && s[8] == '-' && s[11] == '.';
  if (!strncasecmp(s, "eui.", 4) || !strncasecmp(s, "naa.", 4)) {
    for (const char *p = s + 4; *p; p++)
      if (!isxdigit((unsigned char)*p))
        return false;
    return true;
  }
  return false;
}

/* A portal from "ADDR:PORT" / "[V6]:PORT". */
static json_t *portal_from_spec(const char *spec)
{
  char ip[128];
  unsigned port = 3260;
  const char *colon = strrchr(spec, ':');
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close)
      return NULL;
    snprintf(ip, sizeof ip, "%.*s", (int)(close - spec - 1), spec + 1);
    if (close[1] == ':')
      port = (unsigned)atoi(close + 2);
  } else if (colon) {
    snprintf(ip, sizeof ip, "%.*s", (int)(colon - spec), spec);
    port = (unsigned)atoi(colon + 1);
  } else {
    snprintf(ip, sizeof ip, "%s", spec);
  }
  return json_pack("{s:s,s:i,s:b,s:b}", "ip_address", ip, "port", (int)port, "iser", 0,
                   "offload", 0);
}

static json_t *new_tpg(const struct lg_admin_ctx *ctx, unsigned tag, struct out *o)
{
  json_t *portals = json_array();
  if (ctx && ctx->n_portals) {
    for (size_t i = 0; i < ctx->n_portals; i++) {
      json_t *p = portal_from_spec(ctx->portals[i]);
      if (p) {
        json_array_append_new(portals, p);
        outf(o, "Created portal %s (the gateway's --listen).\n", ctx->portals[i]);
      }
    }
  } else {
    json_array_append_new(portals, portal_from_spec("0.0.0.0:3260"));
    outf(o, "Global pref auto_add_default_portal=true\n"
         "Created default portal listening on all IPs (0.0.0.0), port 3260.\n");
  }
  return json_pack("{s:i,s:b,s:{s:i,s:i,s:i},s:{},s:o,s:[],s:[]}", "tag", (int)tag, "enable", 1,
                   "attributes", "authentication", 0, "generate_node_acls", 0,
                   "demo_mode_write_protect", 1, "parameters", "portals", portals, "luns",
                   "node_acls");
}

static int target_create(json_t *cfg, const struct lg_admin_ctx *ctx, size_t argc,
                         const char *const *argv, struct out *o, char **msg)
{
  const char *names[] = { "wwn" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "/iscsi create", 0, argc, argv, msg) < 0)
    return -1;
  char gen[80];
  const char *wwn = a.val[0];
  if (!wwn) { /* targetcli makes one up */
    unsigned long long r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
      r = (unsigned long long)time(NULL);
    snprintf(gen, sizeof gen, "iqn.2025-10.org.lungate:sn.%012llx", r & 0xffffffffffffULL);
    wwn = gen;
  }
  if (!valid_iscsi_name(wwn))
    return fail(msg, "/iscsi create: \"%s\" is not an iSCSI name; give an IQN such as "
                "iqn.2025-10.com.example:disk1 (or eui./naa. with hex digits)", wwn);
  if (target_find(cfg, wwn))
    return fail(msg, "Target %s exists already; delete it first (lungate /iscsi delete %s) "
                "or choose another name", wwn, wwn);
  struct out notes = { 0 };
  json_t *tpg = new_tpg(ctx, 1, &notes);
  json_t *t = json_pack("{s:s,s:s,s:[o]}", "wwn", wwn, "fabric", "iscsi", "tpgs", tpg);
  json_array_append_new(array_member(cfg, "targets"), t);
  outf(o, "Created target %s.\nCreated TPG 1.\n%s", wwn, notes.buf ? notes.buf : "");
  free(notes.buf);
  return 0;
}

static int target_delete(json_t *cfg, size_t argc, const char *const *argv, struct out *o,
                         char **msg)
{
  const char *names[] = { "wwn" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "/iscsi delete", 1, argc, argv, msg) < 0)
    return -1;
  json_t *t = target_find(cfg, a.val[0]);
  if (!t)
    return fail(msg, "No such Target in configfs: %s (lungate ls /iscsi lists them)", a.val[0]);
  outf(o, "Deleted Target %s.", jstr(t, "wwn"));
  array_remove(json_object_get(cfg, "targets"), t);
  return 0;
}

static int tpg_create(json_t *target, const struct lg_admin_ctx *ctx, size_t argc,
                      const char *const *argv, struct out *o, char **msg)
{
  const char *names[] = { "tag" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "create", 0, argc, argv, msg) < 0)
    return -1;
  unsigned long long tag = 1;
  if (a.val[0]) {
    if (!parse_index(a.val[0], "tpg", 65535, &tag) || tag == 0)
      return fail(msg, "create: tag %s: give a number from 1 to 65535 (or tpgN)", a.val[0]);
    if (tpg_find(target, tag))
      return fail(msg, "TPG %llu exists already in %s", tag, jstr(target, "wwn"));
  } else {
    while (tpg_find(target, tag))
      tag++;
  }
  json_array_append_new(array_member(target, "tpgs"), new_tpg(ctx, (unsigned)tag, o));
  outf(o, "Created TPG %llu.", tag);
  return 0;
}

static int tpg_delete(json_t *target, size_t argc, const char *const *argv, struct out *o,
                      char **msg)
{
  const char *names[] = { "tag" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "delete", 1, argc, argv, msg) < 0)
    return -1;
  unsigned long long tag;
  json_t *g;
  if (!parse_index(a.val[0], "tpg", 65535, &tag) || !(g = tpg_find(target, tag)))
    return fail(msg, "No such TPG %s in %s", a.val[0], jstr(target, "wwn"));
  array_remove(json_object_get(target, "tpgs"), g);
  outf(o, "Deleted TPGT %llu.", tag);
  return 0;
}

/* ---- LUNs, ACLs, mapped LUNs ---- */

static unsigned long long next_free(const json_t *arr, const char *key, unsigned long long from)
{
  while (by_index(arr, key, from))
    from++;
  return from;
}

/* Map tpg_lun in acl as the same number if free, else the next free one. */
static unsigned long long map_lun(json_t *acl, unsigned long long tpg_lun, bool wp)
{
  json_t *ml = array_member(acl, "mapped_luns");
  unsigned long long idx = by_index(ml, "index", tpg_lun) ? next_free(ml, "index", 0) : tpg_lun;
  json_array_append_new(ml, json_pack("{s:I,s:I,s:b}", "index", (json_int_t)idx, "tpg_lun",
                                      (json_int_t)tpg_lun, "write_protect", wp));
  return idx;
}

static int lun_create(json_t *cfg, json_t *tpg, size_t argc, const char *const *argv,
                      struct out *o, char **msg)
{
  const char *names[] = { "storage_object", "lun", "add_mapped_luns" };
  struct args a = { .names = names, .n = 3 };
  if (parse_args(&a, "create", 1, argc, argv, msg) < 0)
    return -1;
  char plugin[64], name[256];
  const char *ref = a.val[0];
  if (sscanf(ref, "/backstores/%63[^/]/%255s", plugin, name) != 2 || !so_find(cfg, plugin, name))
    return fail(msg, "create: storage_object %s: no such storage object; give "
                "/backstores/PLUGIN/NAME of one (lungate ls /backstores)", ref);
  json_t *luns = array_member(tpg, "luns");
  unsigned long long idx;
  if (a.val[1]) {
    if (!parse_index(a.val[1], "lun", 16383, &idx))
      return fail(msg, "create: lun=%s: give a number from 0 to 16383 (or lunN)", a.val[1]);
    if (by_index(luns, "index", idx))
      return fail(msg, "LUN %llu exists already in this TPG; choose another number or "
                  "leave lun out for the next free one", idx);
  } else {
    idx = next_free(luns, "index", 0);
    if (idx > 16383)
      return fail(msg, "this TPG has no free LUN number left (0 to 16383)");
  }
  bool add_mapped = true;
  if (arg_bool(&a, 2, true, &add_mapped, msg) < 0)
    return -1;
  char so_ref[400];
  snprintf(so_ref, sizeof so_ref, "/backstores/%s/%s", plugin, name);
  json_array_append_new(luns, json_pack("{s:I,s:s,s:s}", "index", (json_int_t)idx,
                                        "storage_object", so_ref, "alua_tg_pt_gp_name",
                                        "default_tg_pt_gp"));
  outf(o, "Created LUN %llu.", idx);
  size_t i;
  json_t *acl;
  json_array_foreach(add_mapped ? json_object_get(tpg, "node_acls") : NULL, i, acl) {
    unsigned long long m = map_lun(acl, idx, false);
    outf(o, "\nCreated LUN %llu->%llu mapping in node ACL %s", idx, m, jstr(acl, "node_wwn"));
  }
  return 0;
}

static int lun_delete(json_t *tpg, size_t argc, const char *const *argv, struct out *o,
                      char **msg)
{
  const char *names[] = { "lun" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "delete", 1, argc, argv, msg) < 0)
    return -1;
  unsigned long long idx;
  json_t *lun;
  if (!parse_index(a.val[0], "lun", 16383, &idx) ||
      !(lun = by_index(json_object_get(tpg, "luns"), "index", idx)))
    return fail(msg, "LUN %s does not exist in this TPG (lungate ls shows its luns)", a.val[0]);
  size_t i;
  json_t *acl;
  json_array_foreach(json_object_get(tpg, "node_acls"), i, acl) {
    size_t k;
    json_t *m;
    json_array_foreach(json_object_get(acl, "mapped_luns"), k, m)
      if (jint(m, "tpg_lun", -1) == (long long)idx)
        return fail(msg, "LUN %llu is still mapped in node ACL %s (mapped_lun%lld); delete "
                    "that mapping or the ACL first (.../acls delete %s)", idx,
                    jstr(acl, "node_wwn"), jint(m, "index", 0), jstr(acl, "node_wwn"));
  }
  array_remove(json_object_get(tpg, "luns"), lun);
  outf(o, "Deleted LUN %llu.", idx);
  return 0;
}

static bool valid_acl_name(const char *s)
{
  if (strchr(s, '*')) { /* lungate's patterns: iqn.2025-10.org.school:* */
    for (const char *p = s; *p; p++)
      if ((unsigned char)*p <= ' ' || *p == '/' || (unsigned char)*p >= 0x7f)
        return false;
    return *s && strlen(s) <= 223;
  }
  return valid_iscsi_name(s);
}

static int acl_create(json_t *tpg, size_t argc, const char *const *argv, struct out *o,
                      char **msg)
{
  const char *names[] = { "wwn", "add_mapped_luns" };
  struct args a = { .names = names, .n = 2 };
  if (parse_args(&a, "create", 1, argc, argv, msg) < 0)
    return -1;
  if (!valid_acl_name(a.val[0]))
    return fail(msg, "create: \"%s\" is not an initiator name; give its IQN (e.g. "
                "iqn.2025-10.com.example:client1) or a pattern with *", a.val[0]);
  if (acl_find(tpg, a.val[0]))
    return fail(msg, "This NodeACL already exists in configFS: %s; delete it first or "
                "choose another initiator name", a.val[0]);
  bool add_mapped = true;
  if (arg_bool(&a, 1, true, &add_mapped, msg) < 0)
    return -1;
  json_t *acl = json_pack("{s:s,s:{},s:[]}", "node_wwn", a.val[0], "attributes", "mapped_luns");
  json_array_append_new(array_member(tpg, "node_acls"), acl);
  outf(o, "Created Node ACL for %s", a.val[0]);
  size_t i;
  json_t *lun;
  json_array_foreach(add_mapped ? json_object_get(tpg, "luns") : NULL, i, lun) {
    unsigned long long m = map_lun(acl, (unsigned long long)jint(lun, "index", 0), false);
    outf(o, "\nCreated mapped LUN %llu.", m);
  }
  return 0;
}

static int acl_delete(json_t *tpg, size_t argc, const char *const *argv, struct out *o,
                      char **msg)
{
  const char *names[] = { "wwn" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "delete", 1, argc, argv, msg) < 0)
    return -1;
  json_t *acl = acl_find(tpg, a.val[0]);
  if (!acl)
    return fail(msg, "No such NodeACL in configfs: %s (lungate ls shows the TPG's acls)",
                a.val[0]);
  outf(o, "Deleted Node ACL %s.", jstr(acl, "node_wwn"));
  array_remove(json_object_get(tpg, "node_acls"), acl);
  return 0;
}

static int mapped_create(json_t *tpg, json_t *acl, size_t argc, const char *const *argv,
                         struct out *o, char **msg)
{
  const char *names[] = { "mapped_lun", "tpg_lun_or_backstore", "write_protect" };
  struct args a = { .names = names, .n = 3 };
  if (parse_args(&a, "create", 2, argc, argv, msg) < 0)
    return -1;
  unsigned long long m, t;
  if (!parse_index(a.val[0], "mapped_lun", 16383, &m))
    return fail(msg, "create: mapped_lun %s: give a number from 0 to 16383", a.val[0]);
  json_t *ml = array_member(acl, "mapped_luns");
  if (by_index(ml, "index", m))
    return fail(msg, "Mapped LUN %llu already exists in %s; delete it first", m,
                jstr(acl, "node_wwn"));
  json_t *lun = NULL;
  if (parse_index(a.val[1], "lun", 16383, &t)) {
    lun = by_index(json_object_get(tpg, "luns"), "index", t);
  } else {
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(tpg, "luns"), i, l)
      if (jstr(l, "storage_object") && !strcmp(jstr(l, "storage_object"), a.val[1]))
        lun = l;
  }
  if (!lun)
    return fail(msg, "create: %s is no LUN of this TPG; give lunN or the storage object of "
                "one of its LUNs (create it first with .../luns create)", a.val[1]);
  bool wp = false;
  if (arg_bool(&a, 2, false, &wp, msg) < 0)
    return -1;
  json_array_append_new(ml, json_pack("{s:I,s:I,s:b}", "index", (json_int_t)m, "tpg_lun",
                                      (json_int_t)jint(lun, "index", 0), "write_protect", wp));
  outf(o, "Created Mapped LUN %llu.", m);
  return 0;
}

static int mapped_delete(json_t *acl, size_t argc, const char *const *argv, struct out *o,
                         char **msg)
{
  const char *names[] = { "mapped_lun" };
  struct args a = { .names = names, .n = 1 };
  if (parse_args(&a, "delete", 1, argc, argv, msg) < 0)
    return -1;
  unsigned long long m;
  json_t *ml = json_object_get(acl, "mapped_luns"), *v;
  if (!parse_index(a.val[0], "mapped_lun", 16383, &m) || !(v = by_index(ml, "index", m)))
    return fail(msg, "No such mapped LUN %s in %s", a.val[0], jstr(acl, "node_wwn"));
  array_remove(ml, v);
  outf(o, "Deleted Mapped LUN %llu.", m);
  return 0;
}

/* ---- portals ---- */

static int portal_args(size_t argc, const char *const *argv, const char *verb, bool create,
                       char *name, size_t len, json_t **portal, char **msg)
{
  const char *names[] = { "ip_address", "ip_port" };
  struct args a = { .names = names, .n = 2 };
  if (parse_args(&a, verb, create ? 0 : 1, argc, argv, msg) < 0)
    return -1;
  const char *ip = a.val[0] ? a.val[0] : "0.0.0.0";
  unsigned long long port = 3260;
  if (a.val[1] && (!parse_u64(a.val[1], &port) || port == 0 || port > 65535))
    return fail(msg, "%s: ip_port %s: give a port from 1 to 65535", verb, a.val[1]);
  char bare[128];
  snprintf(bare, sizeof bare, "%s", ip);
  if (bare[0] == '[') { /* "[::1]" as targetcli writes it */
    memmove(bare, bare + 1, strlen(bare));
    char *c = strchr(bare, ']');
    if (c)
      *c = '\0';
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, bare, buf) != 1 && inet_pton(AF_INET6, bare, buf) != 1)
    return fail(msg, "%s: ip_address %s: give an IPv4 or IPv6 address (0.0.0.0: every IPv4 "
                "address)", verb, ip);
  *portal = json_pack("{s:s,s:I,s:b,s:b}", "ip_address", bare, "port", (json_int_t)port,
                      "iser", 0, "offload", 0);
  portal_name(*portal, name, len);
  return 0;
}

static int portal_create(json_t *tpg, size_t argc, const char *const *argv, struct out *o,
                         char **msg)
{
  char name[160];
  json_t *p;
  if (portal_args(argc, argv, "create", true, name, sizeof name, &p, msg) < 0)
    return -1;
  if (portal_find(tpg, name)) {
    json_decref(p);
    return fail(msg, "Network portal %s exists already in this TPG", name);
  }
  json_array_append_new(array_member(tpg, "portals"), p);
  if (argc < 2)
    outf(o, "Using default IP port 3260\n");
  outf(o, "Created network portal %s.", name);
  return 0;
}

static int portal_delete(json_t *tpg, size_t argc, const char *const *argv, struct out *o,
                         char **msg)
{
  char name[160];
  json_t *p, *have;
  if (portal_args(argc, argv, "delete", false, name, sizeof name, &p, msg) < 0)
    return -1;
  json_decref(p);
  if (!(have = portal_find(tpg, name)))
    return fail(msg, "No such network portal %s in this TPG (lungate ls shows its portals)",
                name);
  array_remove(json_object_get(tpg, "portals"), have);
  outf(o, "Deleted network portal %s", name);
  return 0;
}

/* ---- set / get ---- */

/* targetcli's auth names -> rtslib's config keys */
static const char *const auth_keys[][2] = {
  { "userid", "chap_userid" }, { "password", "chap_password" },
  { "mutual_userid", "chap_mutual_userid" }, { "mutual_password", "chap_mutual_password" },
};

static const char *auth_key(const char *name)
{
  for (size_t i = 0; i < 4; i++)
    if (!strcmp(auth_keys[i][0], name))
      return auth_keys[i][1];
  return NULL;
}

/* The object `set`/`get` work on, and which groups it has. */
static json_t *group_target(const struct node *n, const char *group, char **msg)
{
  bool attr = !strcmp(group, "attribute"), auth = !strcmp(group, "auth"),
       param = !strcmp(group, "parameter");
  json_t *obj = n->kind == K_TPG ? n->tpg : n->kind == K_ACL ? n->acl
              : n->kind == K_SO ? n->so : NULL;
  if (!obj || (!attr && !auth && !param) || (n->kind == K_SO && !attr) ||
      (n->kind == K_ACL && param)) {
    fail(msg, "%s: no configuration group \"%s\" here; %s", n->path, group,
         n->kind == K_TPG ? "a TPG has attribute, auth and parameter"
         : n->kind == K_ACL ? "an ACL has attribute and auth"
         : n->kind == K_SO ? "a storage object has attribute"
         : "set and get work on a TPG, an ACL or a storage object");
    return NULL;
  }
  return obj;
}

static int cmd_set(struct node *n, size_t argc, const char *const *argv, struct out *o,
                   char **msg)
{
  if (argc < 2)
    return fail(msg, "set: usage: set attribute|auth|parameter NAME=VALUE...");
  json_t *obj = group_target(n, argv[0], msg);
  if (!obj)
    return -1;
  const char *group = argv[0];
  for (size_t i = 1; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq || eq == argv[i])
      return fail(msg, "set %s: \"%s\": give NAME=VALUE", group, argv[i]);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
    const char *v = eq + 1;
    if (!strcmp(group, "auth")) {
      const char *k = auth_key(key);
      if (!k)
        return fail(msg, "set auth: unknown parameter %s; use userid, password, "
                    "mutual_userid and mutual_password", key);
      if (strstr(k, "password") && *v && strlen(v) < 12)
        return fail(msg, "set auth: %s: a CHAP secret must be 12 bytes or more (iPXE and "
                    "Windows refuse shorter ones)", key);
      if (*v)
        json_object_set_new(obj, k, json_string(v));
      else
        json_object_del(obj, k);
      outf(o, "%sParameter %s is now '%s'.", i > 1 ? "\n" : "", key, v);
    } else if (!strcmp(group, "parameter")) {
      json_object_set_new(object_member(obj, "parameters"), key, json_string(v));
      outf(o, "%sParameter %s is now '%s'.", i > 1 ? "\n" : "", key, v);
    } else {
      unsigned long long num;
      if (!parse_u64(v, &num))
        return fail(msg, "set attribute: %s=%s: an attribute is a number", key, v);
      json_object_set_new(object_member(obj, "attributes"), key, json_integer((json_int_t)num));
      outf(o, "%sParameter %s is now '%s'.", i > 1 ? "\n" : "", key, v);
    }
  }
  return 0;
}

static void value_text(const json_t *v, char *buf, size_t len)
{
  if (json_is_string(v))
    snprintf(buf, len, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%d", json_is_true(v) ? 1 : 0);
  else if (!v)
    snprintf(buf, len, "%s", "");
  else {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, len, "%s", t ? t : "");
    free(t);
  }
}

static int cmd_get(struct node *n, size_t argc, const char *const *argv, struct out *o,
                   char **msg)
{
  if (argc < 1)
    return fail(msg, "get: usage: get attribute|auth|parameter [NAME...]");
  json_t *obj = group_target(n, argv[0], msg);
  if (!obj)
    return -1;
  const char *group = argv[0];
  char val[512];
  if (!strcmp(group, "auth")) {
    for (size_t i = 0; i < 4; i++) {
      bool want = argc == 1;
      for (size_t k = 1; k < argc; k++)
        want |= !strcmp(argv[k], auth_keys[i][0]);
      if (want) {
        value_text(json_object_get(obj, auth_keys[i][1]), val, sizeof val);
        outf(o, "%s=%s\n", auth_keys[i][0], val);
      }
    }
    for (size_t k = 1; k < argc; k++)
      if (!auth_key(argv[k]))
        return fail(msg, "get auth: unknown parameter %s; auth has userid, password, "
                    "mutual_userid and mutual_password", argv[k]);
    return 0;
  }
  json_t *grp = json_object_get(obj, !strcmp(group, "attribute") ? "attributes" : "parameters");
  if (argc == 1) {
    const char *key;
    json_t *v;
    json_object_foreach(grp, key, v) {
      value_text(v, val, sizeof val);
      outf(o, "%s=%s\n", key, val);
    }
    return 0;
  }
  for (size_t k = 1; k < argc; k++) {
    json_t *v = json_object_get(grp, argv[k]);
    if (!v)
      return fail(msg, "get %s: %s is not set here (get %s lists those that are)", group,
                  argv[k], group);
    value_text(v, val, sizeof val);
    outf(o, "%s=%s\n", argv[k], val);
  }
  return 0;
}

/* ---- dispatch ---- */

json_t *lg_admin_empty(void)
{
  return json_pack("{s:[],s:[]}", "storage_objects", "targets");
}

static const char *verbs_of(enum kind k)
{
  switch (k) {
  case K_PLUGIN: case K_ISCSI: case K_TARGET: case K_LUNS: case K_ACLS: case K_PORTALS:
    return "create delete ls";
  case K_TPG: return "enable disable set get ls";
  case K_ACL: return "create delete set get ls";
  case K_SO: return "set get ls";
  default: return "ls";
  }
}

const char *lg_admin_verbs(const json_t *config, const char *path)
{
  struct node n;
  char *msg = NULL;
  int r = resolve((json_t *)config, path, &n, &msg);
  free(msg);
  return r < 0 ? NULL : verbs_of(n.kind);
}

int lg_admin_run(const json_t *config, const struct lg_admin_ctx *ctx, const char *path,
                 const char *verb, size_t argc, const char *const *argv, json_t **out,
                 char **msg)
{
  *out = NULL;
  *msg = NULL;
  json_t *cfg = json_is_object(config) ? json_deep_copy(config) : lg_admin_empty();
  struct out o = { 0 };
  struct node n;
  int r = -1;
  bool changes = true;
  if (!cfg) {
    fail(msg, "out of memory");
    goto done;
  }
  if (resolve(cfg, path, &n, msg) < 0)
    goto done;
  if (!verb) {
    fail(msg, "%s: give a command (%s)", n.path, verbs_of(n.kind));
    goto done;
  }
  bool create = !strcmp(verb, "create"), del = !strcmp(verb, "delete");
  if (!strcmp(verb, "set") && (n.kind == K_TPG || n.kind == K_ACL || n.kind == K_SO)) {
    r = cmd_set(&n, argc, argv, &o, msg);
  } else if (!strcmp(verb, "get") && (n.kind == K_TPG || n.kind == K_ACL || n.kind == K_SO)) {
    r = cmd_get(&n, argc, argv, &o, msg);
    changes = false;
  } else if ((!strcmp(verb, "enable") || !strcmp(verb, "disable")) && n.kind == K_TPG) {
    if (argc) {
      fail(msg, "%s %s takes no parameters", n.path, verb);
      goto done;
    }
    json_object_set_new(n.tpg, "enable", json_boolean(verb[0] == 'e'));
    outf(&o, "The TPGT has been %sd.", verb);
    r = 0;
  } else if (create && n.kind == K_PLUGIN) {
    r = backstore_create(cfg, ctx, n.plugin, argc, argv, &o, msg);
  } else if (del && n.kind == K_PLUGIN) {
    r = backstore_delete(cfg, n.plugin, argc, argv, &o, msg);
  } else if (create && n.kind == K_ISCSI) {
    r = target_create(cfg, ctx, argc, argv, &o, msg);
  } else if (del && n.kind == K_ISCSI) {
    r = target_delete(cfg, argc, argv, &o, msg);
  } else if (create && n.kind == K_TARGET) {
    r = tpg_create(n.target, ctx, argc, argv, &o, msg);
  } else if (del && n.kind == K_TARGET) {
    r = tpg_delete(n.target, argc, argv, &o, msg);
  } else if (create && n.kind == K_LUNS) {
    r = lun_create(cfg, n.tpg, argc, argv, &o, msg);
  } else if (del && n.kind == K_LUNS) {
    r = lun_delete(n.tpg, argc, argv, &o, msg);
  } else if (create && n.kind == K_ACLS) {
    r = acl_create(n.tpg, argc, argv, &o, msg);
  } else if (del && n.kind == K_ACLS) {
    r = acl_delete(n.tpg, argc, argv, &o, msg);
  } else if (create && n.kind == K_ACL) {
    r = mapped_create(n.tpg, n.acl, argc, argv, &o, msg);
  } else if (del && n.kind == K_ACL) {
    r = mapped_delete(n.acl, argc, argv, &o, msg);
  } else if (create && n.kind == K_PORTALS) {
    r = portal_create(n.tpg, argc, argv, &o, msg);
  } else if (del && n.kind == K_PORTALS) {
    r = portal_delete(n.tpg, argc, argv, &o, msg);
  } else {
    fail(msg, "Command not found %s: %s has %s", verb, n.path, verbs_of(n.kind));
  }
done:
  if (r == 0) {
    *msg = out_take(&o);
    if (changes) {
      *out = cfg;
      cfg = NULL;
    }
  } else {
    free(o.buf);
    if (!*msg)
      *msg = strdup("out of memory");
  }
  json_decref(cfg);
  return r;
}

/* ---- the ls tree, drawn as configshell draws targetcli's ---- */

struct tnode {
  char *name, *desc;
  struct tnode **kids;
  size_t n, cap;
};

static struct tnode *tn_add(struct tnode *parent, const char *name, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static struct tnode *tn_add(struct tnode *parent, const char *name, const char *fmt, ...)
{
  struct tnode *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->name = strdup(name);
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&t->desc, fmt, ap) < 0)
    t->desc = NULL;
  va_end(ap);
  if (parent) {
    if (parent->n == parent->cap) {
      size_t cap = parent->cap ? parent->cap * 2 : 4;
      struct tnode **k = realloc(parent->kids, cap * sizeof *k);
      if (!k) {
        free(t->name);
        free(t->desc);
        free(t);
        return NULL;
      }
      parent->kids = k;
      parent->cap = cap;
    }
    parent->kids[parent->n++] = t;
  }
  return t;
}

static void tn_free(struct tnode *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    tn_free(t->kids[i]);
  free(t->kids);
  free(t->name);
  free(t->desc);
  free(t);
}

/* configshell's order: by the name without its trailing digits, then by them
 * as a number ("lun2" before "lun10"). */
static int tn_cmp(const void *a, const void *b)
{
  const char *x = (*(struct tnode *const *)a)->name, *y = (*(struct tnode *const *)b)->name;
  size_t lx = strlen(x), ly = strlen(y), px = lx, py = ly;
  while (px > 0 && isdigit((unsigned char)x[px - 1]))
    px--;
  while (py > 0 && isdigit((unsigned char)y[py - 1]))
    py--;
  size_t m = px < py ? px : py;
  int c = memcmp(x, y, m);
  if (c)
    return c;
  if (px != py)
    return px < py ? -1 : 1;
  /* same prefix: compare the numbers (no digits: 0) */
  const char *nx = x + px, *ny = y + py;
  while (*nx == '0' && nx[1])
    nx++;
  while (*ny == '0' && ny[1])
    ny++;
  size_t dx = strlen(nx), dy = strlen(ny);
  if (dx != dy)
    return dx < dy ? -1 : 1;
  return strcmp(nx, ny);
}

static void tn_render(struct out *o, struct tnode *t, bool *margin, size_t depth, int width)
{
  char line[4096];
  size_t used = 0;
  for (size_t i = 0; i < depth; i++) /* configshell's margin: "| " below a node with siblings after it */
    used += (size_t)snprintf(line + used, sizeof line - used, "%s", i == 0 ? "  "
                             : margin[i] ? "| " : "  ");
  used += (size_t)snprintf(line + used, sizeof line - used, "o- ");
  const char *desc = t->desc && *t->desc ? t->desc : "...";
  long pad = (long)width - 1 - (long)(strlen(desc) + 3) - (long)used - (long)strlen(t->name);
  outf(o, "%s%s ", line, t->name);
  for (long i = 0; i < pad; i++)
    outf(o, ".");
  outf(o, " [%s]\n", desc);
  if (t->n > 1)
    qsort(t->kids, t->n, sizeof *t->kids, tn_cmp);
  for (size_t i = 0; i < t->n && depth < 31; i++) {
    margin[depth + 1] = i + 1 < t->n;
    tn_render(o, t->kids[i], margin, depth + 1, width);
  }
}

/* targetcli's bytes_to_human */
static void human(unsigned long long n, char *buf, size_t len)
{
  if (n < 1024) {
    snprintf(buf, len, "%llu bytes", n);
    return;
  }
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = (double)n / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, len, "%3.1f%s", v, units[u]);
}

static unsigned long long so_size(const json_t *cfg, const json_t *so, const json_t *sizes,
                                  int depth)
{
  size_t i;
  json_t *s;
  json_array_foreach(sizes, i, s)
    if (jstr(s, "plugin") && jstr(so, "plugin") && !strcmp(jstr(s, "plugin"), jstr(so, "plugin"))
        && jstr(s, "name") && jstr(so, "name") && !strcmp(jstr(s, "name"), jstr(so, "name")))
      return (unsigned long long)jint(s, "size", 0);
  long long sz = jint(so, "size", 0);
  struct stat st;
  if (sz <= 0 && jstr(so, "dev") && stat(jstr(so, "dev"), &st) == 0 && S_ISREG(st.st_mode))
    sz = st.st_size;
  char bp[64], bn[256];
  const char *base = jstr(so, "base"); /* a layer is as large as its base */
  json_t *b;
  if (sz <= 0 && base && depth < 8 && sscanf(base, "/backstores/%63[^/]/%255s", bp, bn) == 2 &&
      (b = so_find(cfg, bp, bn)))
    return so_size(cfg, b, sizes, depth + 1);
  return sz > 0 ? (unsigned long long)sz : 0;
}

static void add_storage(struct tnode *plugin_node, const json_t *cfg, const json_t *so,
                        const json_t *sizes)
{
  const char *plugin = jstr(so, "plugin"), *name = jstr(so, "name");
  char size[32], what[1024], first[512];
  human(so_size(cfg, so, sizes, 0), size, sizeof size);
  const char *status = so_users(cfg, plugin, name, what, sizeof what, first, sizeof first)
                       ? "activated" : "deactivated";
  struct tnode *t;
  if (!strcmp(plugin, "fileio") || !strcmp(plugin, "block")) {
    bool fileio = !strcmp(plugin, "fileio");
    bool wb = truthy(json_object_get(so, "write_back"), fileio);
    t = tn_add(plugin_node, name, "%s (%s) %s%s %s", jstr(so, "dev") ? jstr(so, "dev") : "",
               size, !fileio && truthy(json_object_get(so, "readonly"), false) ? "ro " : "",
               wb ? "write-back" : "write-thru", status);
  } else {
    const char *where = jstr(so, "dev") ? jstr(so, "dev") : jstr(so, "uri") ? jstr(so, "uri")
                      : jstr(so, "base") ? jstr(so, "base") : NULL;
    const char *cfgs = jstr(so, "config");
    if (!where && cfgs) /* rtslib's user plugin: what follows the handler name */
      where = strchr(cfgs, '/') ? strchr(cfgs, '/') + 1 : cfgs;
    if (!where && jstr(so, "pool") && jstr(so, "image")) {
      snprintf(first, sizeof first, "%s/%s", jstr(so, "pool"), jstr(so, "image"));
      where = first;
    }
    t = tn_add(plugin_node, name, "%s (%s) %s", where ? where : "(no config)", size, status);
  }
  /* the ALUA groups targetcli shows under every storage object */
  json_t *groups = json_object_get(so, "alua_tpgs"), *g;
  size_t i, ng = json_array_size(groups);
  struct tnode *alua = tn_add(t, "alua", "ALUA Groups: %zu", ng ? ng : 1);
  if (!ng)
    tn_add(alua, "default_tg_pt_gp", "ALUA state: Active/optimized");
  static const char *const states[] = { "Active/optimized", "Active/non-optimized", "Standby",
                                        "Unavailable", "LBA Dependent", "", "", "",
                                        "", "", "", "", "", "", "Offline", "Transitioning" };
  json_array_foreach(groups, i, g) {
    long long st = jint(g, "alua_access_state", 0);
    tn_add(alua, jstr(g, "name") ? jstr(g, "name") : "?", "ALUA state: %s",
           st >= 0 && st < 16 && *states[st] ? states[st] : "Unknown");
  }
}

static void tpg_summary(const json_t *g, char *buf, size_t len)
{
  json_t *attrs = json_object_get(g, "attributes");
  if (!truthy(json_object_get(g, "enable"), true)) {
    snprintf(buf, len, "disabled");
    return;
  }
  bool gen = truthy(json_object_get(attrs, "generate_node_acls"), false);
  bool auth = truthy(json_object_get(attrs, "authentication"), false);
  size_t u = (size_t)snprintf(buf, len, "%s", gen ? "gen-acls" : "no-gen-acls");
  if (!auth)
    snprintf(buf + u, len - u, ", no-auth");
  else if (!gen)
    snprintf(buf + u, len - u, ", auth per-acl");
  else
    snprintf(buf + u, len - u, ", tpg-auth, %s", jstr(g, "chap_mutual_userid")
             ? "mutual auth" : "1-way auth");
}

static void add_tpg(struct tnode *tn, const json_t *cfg, const json_t *g)
{
  char buf[256], name[32];
  tpg_summary(g, buf, sizeof buf);
  snprintf(name, sizeof name, "tpg%lld", jint(g, "tag", 1));
  struct tnode *tp = tn_add(tn, name, "%s", buf);
  json_t *attrs = json_object_get(g, "attributes");
  bool gen = truthy(json_object_get(attrs, "generate_node_acls"), false);
  bool auth = truthy(json_object_get(attrs, "authentication"), false);
  json_t *acls = json_object_get(g, "node_acls"), *luns = json_object_get(g, "luns"), *v;
  size_t i;
  struct tnode *an = tn_add(tp, "acls", "ACLs: %zu", json_array_size(acls));
  json_array_foreach(acls, i, v) {
    json_t *ml = json_object_get(v, "mapped_luns"), *m;
    char d[256] = "";
    if (auth && gen)
      snprintf(d, sizeof d, "auth via tpg, ");
    else if (auth)
      snprintf(d, sizeof d, "%s, ", jstr(v, "chap_mutual_userid") ? "mutual auth" : "1-way auth");
    struct tnode *a = tn_add(an, jstr(v, "node_wwn") ? jstr(v, "node_wwn") : "?",
                             "%sMapped LUNs: %zu", d, json_array_size(ml));
    size_t k;
    json_array_foreach(ml, k, m) {
      char mn[40], so[400] = "?";
      snprintf(mn, sizeof mn, "mapped_lun%lld", jint(m, "index", 0));
      json_t *lun = by_index(luns, "index", (unsigned long long)jint(m, "tpg_lun", -1));
      const char *ref = jstr(lun, "storage_object");
      if (ref && !strncmp(ref, "/backstores/", 12))
        snprintf(so, sizeof so, "%s", ref + 12);
      if (lun)
        tn_add(a, mn, "lun%lld %s (%s)", jint(m, "tpg_lun", 0), so,
               truthy(json_object_get(m, "write_protect"), false) ? "ro" : "rw");
      else
        tn_add(a, mn, "BROKEN LUN LINK");
    }
  }
  struct tnode *ln = tn_add(tp, "luns", "LUNs: %zu", json_array_size(luns));
  json_array_foreach(luns, i, v) {
    char n[32], plugin[64], sname[256];
    snprintf(n, sizeof n, "lun%lld", jint(v, "index", 0));
    const char *ref = jstr(v, "storage_object");
    json_t *so = NULL;
    if (ref && sscanf(ref, "/backstores/%63[^/]/%255s", plugin, sname) == 2)
      so = so_find(cfg, plugin, sname);
    const char *gp = jstr(v, "alua_tg_pt_gp_name") ? jstr(v, "alua_tg_pt_gp_name")
                   : "default_tg_pt_gp";
    if (!so)
      tn_add(ln, n, "BROKEN STORAGE LINK");
    else if (jstr(so, "dev"))
      tn_add(ln, n, "%s/%s (%s) (%s)", plugin, sname, jstr(so, "dev"), gp);
    else
      tn_add(ln, n, "%s/%s (%s)", plugin, sname, gp);
  }
  json_t *portals = json_object_get(g, "portals");
  struct tnode *pn = tn_add(tp, "portals", "Portals: %zu", json_array_size(portals));
  json_array_foreach(portals, i, v) {
    char n[160];
    portal_name(v, n, sizeof n);
    tn_add(pn, n, "%s", truthy(json_object_get(v, "iser"), false) ? "iser"
           : truthy(json_object_get(v, "offload"), false) ? "offload" : "OK");
  }
}

static struct tnode *build_tree(const json_t *cfg, const json_t *sizes)
{
  struct tnode *root = tn_add(NULL, "/", "%s", "");
  struct tnode *bs = tn_add(root, "backstores", "%s", "");
  /* the plugins: lungate's, then any other the config has */
  const char *plugins[64];
  size_t np = 0;
  for (size_t i = 0; i < N_KNOWN; i++)
    if (plugin_shown(cfg, known_plugins[i]))
      plugins[np++] = known_plugins[i];
  size_t i;
  json_t *so, *t;
  json_array_foreach(json_object_get(cfg, "storage_objects"), i, so) {
    const char *p = jstr(so, "plugin");
    bool seen = !p;
    for (size_t k = 0; k < np && !seen; k++)
      seen = !strcmp(plugins[k], p);
    if (!seen && np < 64)
      plugins[np++] = p;
  }
  for (size_t k = 0; k < np; k++) {
    size_t count = 0;
    json_array_foreach(json_object_get(cfg, "storage_objects"), i, so)
      count += jstr(so, "plugin") && !strcmp(jstr(so, "plugin"), plugins[k]);
    struct tnode *pn = tn_add(bs, plugins[k], "Storage Objects: %zu", count);
    json_array_foreach(json_object_get(cfg, "storage_objects"), i, so)
      if (jstr(so, "plugin") && !strcmp(jstr(so, "plugin"), plugins[k]) && jstr(so, "name"))
        add_storage(pn, cfg, so, sizes);
  }
  size_t nt = 0;
  json_array_foreach(json_object_get(cfg, "targets"), i, t)
    nt += is_iscsi_target(t) && jstr(t, "wwn");
  char disc[64] = "";
  json_t *f;
  json_array_foreach(json_object_get(cfg, "fabric_modules"), i, f)
    if (jstr(f, "name") && !strcmp(jstr(f, "name"), "iscsi") &&
        truthy(json_object_get(f, "discovery_enable_auth"), false))
      snprintf(disc, sizeof disc, "%s disc auth, ", jstr(f, "discovery_mutual_userid") &&
               *jstr(f, "discovery_mutual_userid") ? "mutual" : "1-way");
  struct tnode *is = tn_add(root, "iscsi", "%sTargets: %zu", disc, nt);
  json_array_foreach(json_object_get(cfg, "targets"), i, t) {
    if (!is_iscsi_target(t) || !jstr(t, "wwn"))
      continue;
    json_t *tpgs = json_object_get(t, "tpgs"), *g;
    struct tnode *tn = tn_add(is, jstr(t, "wwn"), "TPGs: %zu", json_array_size(tpgs));
    size_t k;
    json_array_foreach(tpgs, k, g)
      add_tpg(tn, cfg, g);
  }
  return root;
}

/* The node of the tree at a resolved path. */
static struct tnode *tn_find(struct tnode *root, const char *path)
{
  char buf[1024], *save = NULL;
  snprintf(buf, sizeof buf, "%s", path);
  struct tnode *t = root;
  for (char *c = strtok_r(buf, "/", &save); c && t; c = strtok_r(NULL, "/", &save)) {
    struct tnode *next = NULL;
    unsigned long long a, b;
    for (size_t i = 0; i < t->n && !next; i++)
      if (!strcasecmp(t->kids[i]->name, c))
        next = t->kids[i];
    /* "0" for lun0, tpg1 for tpg01, ... as resolve() takes them */
    for (size_t i = 0; i < t->n && !next; i++) {
      const char *kn = t->kids[i]->name;
      size_t p = strlen(kn);
      while (p && isdigit((unsigned char)kn[p - 1]))
        p--;
      if (p < strlen(kn) && parse_u64(kn + p, &a) &&
          (parse_u64(c, &b) || (!strncasecmp(c, kn, p) && parse_u64(c + p, &b))) && a == b)
        next = t->kids[i];
    }
    t = next;
  }
  return t;
}

char *lg_admin_tree(const json_t *config, const json_t *sizes, const char *path, int width,
                    char **err)
{
  *err = NULL;
  json_t *cfg = json_is_object(config) ? json_incref((json_t *)config) : lg_admin_empty();
  struct node n;
  char *text = NULL;
  if (resolve(cfg, path ? path : "/", &n, err) == 0) {
    struct tnode *root = build_tree(cfg, sizes);
    struct tnode *t = root ? tn_find(root, n.path) : NULL;
    if (t) {
      struct out o = { 0 };
      bool margin[33] = { false };
      tn_render(&o, t, margin, 0, width);
      text = out_take(&o);
    } else {
      fail(err, "%s: nothing to show", n.path);
    }
    tn_free(root);
  }
  json_decref(cfg);
  return text;
}

static void tn_paths(struct out *o, const struct tnode *t, const char *prefix)
{
  for (size_t i = 0; i < t->n; i++) {
    const struct tnode *k = t->kids[i];
    if (!strcmp(k->name, "alua")) /* targetcli's, not a path of lungate's */
      continue;
    char *p = NULL;
    if (asprintf(&p, "%s/%s", prefix, k->name) < 0)
      return;
    outf(o, "%s\n", p);
    tn_paths(o, k, p);
    free(p);
  }
}

char *lg_admin_paths(const json_t *config)
{
  json_t *cfg = json_is_object(config) ? json_incref((json_t *)config) : lg_admin_empty();
  struct tnode *root = build_tree(cfg, NULL);
  struct out o = { 0 };
  if (root)
    tn_paths(&o, root, "");
  tn_free(root);
  json_decref(cfg);
  return out_take(&o);
}
