/* The web console's admin password: a salted PBKDF2-HMAC-SHA256 hash (nettle)
 * in a file of one line,
 *   pbkdf2-sha256$ITERATIONS$SALT-HEX$HASH-HEX
 * written by `lungate passwd`.  The password itself is kept nowhere. */
#include "web/web.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <nettle/memops.h>
#include <nettle/pbkdf2.h>

#include "target/model.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define PW_MAX 1024

static void hex(const uint8_t *p, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
  if (slen != 2 * n)
    return -1;
  for (size_t i = 0; i < 2 * n; i++) {
    char ch = s[i];
    int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (v < 0)
      return -1;
    out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
  }
  return 0;
}

int lg_web_hash(const char *password, unsigned iterations, char *out, size_t len)
{
  uint8_t salt[SALT_LEN], hash[HASH_LEN];
  if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
    return -EIO;
  pbkdf2_hmac_sha256(strlen(password), (const uint8_t *)password, iterations, sizeof salt, salt,
                     sizeof hash, hash);
  char s[2 * SALT_LEN + 1], h[2 * HASH_LEN + 1];
  hex(salt, sizeof salt, s);
  hex(hash, sizeof hash, h);
  int n = snprintf(out, len, "pbkdf2-sha256$%u$%s$%s", iterations, s, h);
  return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int parse_line(const char *line, unsigned *iterations, uint8_t *salt, uint8_t *hash)
{
  int off = 0;
  if (sscanf(line, "pbkdf2-sha256$%u$%n", iterations, &off) != 1 || !off ||
      *iterations < 1000 || *iterations > 100000000)
    return -1;
  const char *salt_hex = line + off, *dollar = strchr(salt_hex, '$');
  if (!dollar)
    return -1;
  const char *hash_hex = dollar + 1;
  size_t hlen = strcspn(hash_hex, "\r\n");
  if (unhex(salt_hex, (size_t)(dollar - salt_hex), salt, SALT_LEN) < 0 ||
      unhex(hash_hex, hlen, hash, HASH_LEN) < 0)
    return -1;
  return 0;
}

bool lg_web_hash_valid(const char *line)
{
  unsigned iterations;
  uint8_t salt[SALT_LEN], hash[HASH_LEN];
  return parse_line(line, &iterations, salt, hash) == 0;
}

int lg_web_verify(const char *line, const char *password)
{
  unsigned iterations;
  uint8_t salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
  if (parse_line(line, &iterations, salt, want) < 0)
    return -1;
  pbkdf2_hmac_sha256(strlen(password), (const uint8_t *)password, iterations, sizeof salt, salt,
                     sizeof got, got);
  return memeql_sec(want, got, sizeof got) ? 1 : 0;
}

const char *lg_web_default_passwd(void)
{
  static char path[PATH_MAX];
  if (geteuid() == 0)
    return "/etc/lungate/web.passwd";
  const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  if (xdg && *xdg == '/')
    snprintf(path, sizeof path, "%s/lungate/web.passwd", xdg);
  else if (home && *home == '/')
    snprintf(path, sizeof path, "%s/.config/lungate/web.passwd", home);
  else
    return NULL;
  return path;
}

/* One line from stdin, without echo when it is a terminal; -1 at EOF. */
static int read_password(const char *prompt, char *buf, size_t len)
{
  bool tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty) {
    fprintf(stderr, "%s", prompt);
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  char *r = fgets(buf, (int)len, stdin);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fprintf(stderr, "\n");
  }
  if (!r)
    return -1;
  buf[strcspn(buf, "\r\n")] = '\0';
  return 0;
}

/* mkdir -p of path's folder (0700 for the ones it makes). */
static void make_parent(const char *path)
{
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
      return;
    *p = '/';
  }
}

static void passwd_usage(FILE *f)
{
  const char *def = lg_web_default_passwd();
  fprintf(f,
    "usage: lungate passwd [-c CONFIG | --file FILE]\n"
    "Sets the web console's admin password (serve --web): reads it from the\n"
    "terminal (twice) or from one line of stdin, and writes its salted hash\n"
    "(PBKDF2-SHA256) to FILE: the config's \"web\": {\"password_file\"} with -c,\n"
    "else %s.\n", def ? def : "(none: give --file)");
}

int cmd_passwd(int argc, char **argv)
{
  static const struct option opts[] = {
    { "file", required_argument, NULL, 'f' },
    { "config", required_argument, NULL, 'c' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *file = NULL, *config = NULL;
  int ch;
  while ((ch = getopt_long(argc, argv, "f:c:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'f': file = optarg; break;
    case 'c': config = optarg; break;
    case 'h': passwd_usage(stdout); return 0;
    default: passwd_usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    passwd_usage(stderr);
    return 2;
  }
  char *from_config = NULL;
  if (!file && config) {
    json_error_t je;
    json_t *j = json_load_file(config, 0, &je);
    if (!j) {
      fprintf(stderr, "lungate passwd: %s: %s\n", config, je.text);
      return 1;
    }
    const char *p = json_string_value(json_object_get(json_object_get(j, "web"),
                                                      "password_file"));
    from_config = p ? strdup(p) : NULL;
    json_decref(j);
    if (!from_config) {
      fprintf(stderr, "lungate passwd: %s has no \"web\": {\"password_file\": ...}; add it "
                      "or give --file FILE\n", config);
      return 1;
    }
    file = from_config;
  }
  if (!file && !(file = lg_web_default_passwd())) {
    fprintf(stderr, "lungate passwd: no default place for the password file (HOME is not "
                    "set); give --file FILE\n");
    return 1;
  }
  char pw[PW_MAX], again[PW_MAX], line[256], tmp[PATH_MAX];
  int rc = 1;
  if (read_password("New web console password: ", pw, sizeof pw) < 0) {
    fprintf(stderr, "lungate passwd: no password given\n");
    goto out;
  }
  if (isatty(STDIN_FILENO) &&
      (read_password("Again: ", again, sizeof again) < 0 || strcmp(pw, again))) {
    fprintf(stderr, "lungate passwd: the two passwords differ; nothing changed\n");
    goto out;
  }
  if (strlen(pw) < 8) {
    fprintf(stderr, "lungate passwd: use 8 characters or more; nothing changed\n");
    goto out;
  }
  if (lg_web_hash(pw, LG_WEB_PBKDF2_ITERATIONS, line, sizeof line) < 0) {
    fprintf(stderr, "lungate passwd: cannot draw a salt\n");
    goto out;
  }
  make_parent(file);
  int tl = snprintf(tmp, sizeof tmp, "%s.tmp.%d", file, (int)getpid());
  if (tl < 0 || (size_t)tl >= sizeof tmp) {
    fprintf(stderr, "lungate passwd: %s: path too long; nothing changed\n", file);
    goto out;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  size_t n = strlen(line);
  line[n++] = '\n';
  bool written = fd >= 0 && write(fd, line, n) == (ssize_t)n && fsync(fd) == 0;
  int e = errno;
  if (fd >= 0 && close(fd) < 0 && written) {
    written = false;
    e = errno;
  }
  if (!written || rename(tmp, file) < 0) {
    fprintf(stderr, "lungate passwd: cannot write %s: %s\n", file, strerror(written ? errno : e));
    unlink(tmp);
    goto out;
  }
  fprintf(stderr, "lungate passwd: wrote the password's hash to %s; a running gateway uses "
                  "it at the next login\n", file);
  rc = 0;
out:
  explicit_bzero(pw, sizeof pw);
  explicit_bzero(again, sizeof again);
  free(from_config);
  return rc;
}
