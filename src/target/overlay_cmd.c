/* `lungate overlay list|reset|commit|gc -c CONFIG ...`: the overlay
 * lifecycle, offline (a running gateway holds its overlays locked, and these
 * commands then say so instead of touching them). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backends/cow.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

static void overlay_usage(FILE *f)
{
  fprintf(f,
    "usage: lungate overlay list   -c CONFIG [NAME]\n"
    "       lungate overlay reset  -c CONFIG NAME INITIATOR|--all\n"
    "       lungate overlay commit -c CONFIG NAME INITIATOR NEW-BASE-FILE\n"
    "       lungate overlay gc     -c CONFIG --days N [--dry-run] [NAME]\n"
    "NAME is a cow storage object's name or a target IQN (all its cow LUNs).\n");
}

/* The cow storage objects NAME selects (all of them when NAME is NULL). */
static size_t select_cows(struct lg_model *m, const char *name, struct lg_storage **out,
                          size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < m->n_storage && n < max; i++) {
    struct lg_storage *so = &m->storage[i];
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

static int foreach_overlay(struct lg_storage *so,
                           int (*fn)(struct lg_storage *, const char *path,
                                     const struct cow_info *, void *),
                           void *arg)
{
  return lg_overlay_foreach(so, fn, arg, false);
}

int lg_overlay_foreach(struct lg_storage *so,
                       int (*fn)(struct lg_storage *, const char *path,
                                 const struct cow_info *, void *),
                       void *arg, bool quiet)
{
  const char *dir = cow_overlay_dir(so->h);
  DIR *d = opendir(dir);
  if (!d) {
    if (!quiet)
      fprintf(stderr, "lungate: overlay_dir %s of %s: %s\n", dir, so->name, strerror(errno));
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
      if (!quiet)
        fprintf(stderr, "lungate: %s: not a readable overlay (%s); skipped\n", path,
                strerror(-r));
      continue;
    }
    if (fn(so, path, &info, arg) < 0)
      rc = -1;
  }
  closedir(d);
  return rc;
}

static void human(uint64_t n, char *out, size_t len)
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

static int list_one(struct lg_storage *so, const char *path, const struct cow_info *info,
                    void *arg)
{
  (void)arg;
  char alloc[32], quota[32] = "-", when[32] = "-";
  human(info->allocated, alloc, sizeof alloc);
  if (cow_quota(so->h))
    human(cow_quota(so->h), quota, sizeof quota);
  if (info->last_use) {
    time_t t = (time_t)info->last_use;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
  }
  bool live = cow_in_use(path);
  char safe[LG_SAFE_MAX];
  printf("%-12s %-44s %10s %10s  %-16s %s%s\n", so->name,
         info->client[0] ? lg_safe(info->client, safe, sizeof safe) : "(shared)", alloc,
         quota, when, path, live ? "  (in use)" : "");
  return 0;
}

static int reset_one(struct lg_storage *so, const char *path, const struct cow_info *info,
                     void *arg)
{
  (void)path;
  (void)arg;
  char safe[LG_SAFE_MAX];
  lg_safe(info->client, safe, sizeof safe);
  int r = cow_overlay_remove(so->h, info->client[0] ? info->client : NULL);
  if (r < 0) {
    fprintf(stderr, "lungate: overlay of %s on %s: %s\n", safe, so->name,
            r == -EBUSY ? "in use by a running gateway; log the client out first"
                        : strerror(-r));
    return -1;
  }
  printf("reset %s on %s\n", safe, so->name);
  return 0;
}

struct gc_arg {
  uint64_t max_age;
  bool dry_run;
};

static int gc_one(struct lg_storage *so, const char *path, const struct cow_info *info,
                  void *arg)
{
  struct gc_arg *g = arg;
  uint64_t now = (uint64_t)time(NULL);
  if (info->last_use + g->max_age > now)
    return 0;
  char safe[LG_SAFE_MAX];
  lg_safe(info->client, safe, sizeof safe);
  if (cow_in_use(path)) { /* a live client is not idle, whatever its record says */
    printf("kept %s on %s: in use by a running gateway\n", safe, so->name);
    return 0;
  }
  if (g->dry_run) {
    printf("would remove %s on %s (unused for %llu days): %s\n", safe, so->name,
           (unsigned long long)((now - info->last_use) / 86400), path);
    return 0;
  }
  return reset_one(so, path, info, NULL);
}

/* Write a client's merged view (overlay over base) to a new image file. */
static int commit(struct lg_storage *so, const char *initiator, const char *out)
{
  char path[PATH_MAX];
  if (cow_overlay_path(so->h, initiator, path, sizeof path) < 0 || access(path, F_OK) < 0) {
    fprintf(stderr, "lungate: %s has no overlay on %s (nothing to commit)\n", initiator,
            so->name);
    return 1;
  }
  void *view = so->ops->open_client(so->h, initiator);
  if (!view) {
    fprintf(stderr, "lungate: %s\n", lg_get_error());
    return 1;
  }
  int rc = 1;
  size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 || !buf) {
    fprintf(stderr, "lungate: cannot create %s: %s%s\n", out, strerror(errno),
            errno == EEXIST ? " (choose a new file name: commit never overwrites)" : "");
    goto out;
  }
  uint64_t size = so->ops->size(view);
  if (ftruncate(fd, (off_t)size) < 0) {
    fprintf(stderr, "lungate: %s: %s\n", out, strerror(errno));
    goto out;
  }
  bool tty = isatty(STDERR_FILENO);
  int last_pct = -1;
  for (uint64_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
    int r = so->ops->pread(view, buf, n, off);
    if (r < 0) {
      fprintf(stderr, "lungate: reading %s's disk at %llu: %s\n", initiator,
              (unsigned long long)off, strerror(-r));
      goto out;
    }
    bool zero = buf[0] == 0 && !memcmp(buf, buf + 1, n - 1);
    if (!zero && pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) { /* keep zeroes sparse */
      fprintf(stderr, "lungate: writing %s: %s\n", out, strerror(errno));
      goto out;
    }
    int pct = (int)((off + n) * 100 / size);
    if (tty && pct != last_pct) {
      fprintf(stderr, "\rcommitting %s: %3d%%", initiator, pct);
      last_pct = pct;
    }
  }
  if (fsync(fd) < 0) {
    fprintf(stderr, "lungate: %s: %s\n", out, strerror(errno));
    goto out;
  }
  if (tty)
    fprintf(stderr, "\n");
  printf("wrote %s's disk (%llu bytes) to %s.\nTo make it the next base, point the base "
         "storage object's \"dev\" at it and reset the overlays (they were made over "
         "the old base and will be refused).\n", initiator, (unsigned long long)size, out);
  rc = 0;
out:
  if (fd >= 0)
    close(fd);
  if (rc && fd >= 0)
    unlink(out);
  free(buf);
  so->ops->close(view);
  return rc;
}

int cmd_overlay(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "all", no_argument, NULL, 'a' },
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
  const char *config = NULL;
  bool all = false, dry_run = false;
  long days = -1;
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'a': all = true; break;
    case 'd': days = strtol(optarg, NULL, 10); break;
    case 'n': dry_run = true; break;
    case 'h': overlay_usage(stdout); return 0;
    default: overlay_usage(stderr); return 2;
    }
  }
  char **rest = argv + optind;
  int nrest = argc - optind;
  if (!config) {
    fprintf(stderr, "lungate overlay %s: give the gateway's config with -c CONFIG\n", sub);
    return 2;
  }
  bool ok_args = (!strcmp(sub, "list") && nrest <= 1) ||
                 (!strcmp(sub, "reset") && nrest == (all ? 1 : 2)) ||
                 (!strcmp(sub, "commit") && nrest == 3) ||
                 (!strcmp(sub, "gc") && nrest <= 1 && days >= 0);
  if (!ok_args) {
    overlay_usage(stderr);
    return 2;
  }
  char *err = NULL;
  struct lg_model *m = lg_model_load_file(config, &err);
  if (!m) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    free(err);
    return 1;
  }
  struct lg_storage *cows[64];
  const char *name = nrest ? rest[0] : NULL;
  size_t n = select_cows(m, name, cows, 64);
  int rc = 0;
  if (n == 0) {
    fprintf(stderr, "lungate: %s%s%s has no cow storage object%s\n", config,
            name ? ": " : "", name ? name : "", name ? " by that name or target IQN" : "");
    rc = 1;
  } else if (!strcmp(sub, "list")) {
    printf("%-12s %-44s %10s %10s  %-16s %s\n", "STORAGE", "INITIATOR", "ALLOCATED",
           "QUOTA", "LAST USE", "FILE");
    for (size_t i = 0; i < n; i++)
      foreach_overlay(cows[i], list_one, NULL);
  } else if (!strcmp(sub, "reset")) {
    for (size_t i = 0; i < n; i++) {
      if (all) {
        rc |= foreach_overlay(cows[i], reset_one, NULL) < 0;
        continue;
      }
      int r = cow_overlay_remove(cows[i]->h, cows[i]->per_initiator ? rest[1] : NULL);
      if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "lungate: overlay of %s on %s: %s\n", rest[1], cows[i]->name,
                r == -EBUSY ? "in use by a running gateway; log the client out first"
                            : strerror(-r));
        rc = 1;
      } else {
        printf(r == -ENOENT ? "%s has no overlay on %s\n" : "reset %s on %s\n", rest[1],
               cows[i]->name);
      }
    }
  } else if (!strcmp(sub, "commit")) {
    if (n > 1 || !cows[0]->per_initiator) {
      fprintf(stderr, "lungate: name one per-initiator cow storage object to commit from\n");
      rc = 2;
    } else {
      rc = commit(cows[0], rest[1], rest[2]);
    }
  } else {
    struct gc_arg g = { (uint64_t)days * 86400, dry_run };
    for (size_t i = 0; i < n; i++)
      rc |= foreach_overlay(cows[i], gc_one, &g) < 0;
  }
  lg_model_unref(m);
  return rc;
}
