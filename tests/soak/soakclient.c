/* lg-soak-client: one simulated PC of a busy room, for tests/soak (libiscsi).
 *
 *   lg-soak-client -p 127.0.0.1:PORT -t IQN -i INITIATOR -b BASE-FILE -s SECONDS
 *                  [-r RESET-CMD] [-x SEED] [-a] [-S SECONDS]
 *       Until SECONDS have passed, again and again: log in (a new session,
 *       a new ISID, as iPXE does), "boot" (TEST UNIT READY until the unit
 *       attention is gone, READ CAPACITY(10) and (16), then reads of the
 *       first MiBs in iPXE's pattern: LBA 0, then READ(10)s of 8 to 64 KiB
 *       in order), work (writes of 512 bytes to 128 KiB at random places,
 *       some FUA, some followed by SYNCHRONIZE CACHE, each read back; random
 *       reads), and log out.  Every byte read is checked against the model
 *       of this client's disk: the base, with the client's own writes over
 *       it (a written sector's data is a function of the client, the sector
 *       and the write's number).  Between sessions, one time in
 *       eight, RESET-CMD (a shell command; %s: the initiator name) resets
 *       this client's overlay; if it exits 0, the model becomes the base.
 *       With -S, a session works for 1 to SECONDS seconds (a PC that stays
       on a while: one command every 0-100 ms) instead of 8-31 commands.
       With -a (a room of several gateways), libiscsi may reconnect: a
       gateway being drained asks the client to log out (Async Message,
       event 1), libiscsi logs out and in again through the portal it was
       given (the entry point, which sends it to another gateway), sends
       again the commands that had no response, and clears the new nexus's
       unit attention as at a first login; without -a a dropped connection
       or a logout request fails the commands in flight, counted as errors.
       Prints one line "soak-client INITIATOR: sessions N commands N
 *       read-bytes N written-bytes N resets N errors N wrong-bytes N" and
 *       exits 0 if there was no error and no wrong byte, 1 otherwise (the
 *       first problems are printed on stderr).
 *
 *   lg-soak-client flood HOST PORT CONNECTIONS SECONDS
 *       The idle-socket flood: opens CONNECTIONS TCP connections to HOST:PORT,
 *       sends nothing (every fourth sends half a login BHS) and holds them
 *       for SECONDS, reopening those the gateway closes; every second it
 *       also opens a few more (so the gateway has to make room by closing
 *       its oldest idle ones) and closes as many of its own oldest.  Prints
 *       how many it opened and how many the gateway closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define SECTOR 512u
#define MAX_IO (128u * 1024)

static const char *opt_portal, *opt_target, *opt_initiator, *opt_base, *opt_reset;
static bool opt_reconnect;
static long opt_session_secs;
static long opt_seconds = 60;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* the model: per sector, the number of the last write over it (0: the base) */
static uint32_t *model;
static uint64_t nsectors, disk_size;
static const uint8_t *base;
static uint64_t client_tag;      /* a hash of the initiator name */
static uint32_t nwrite;          /* writes so far */

struct stats {
  uint64_t sessions, commands, rbytes, wbytes, resets, errors, wrong;
} st;

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

/* The data of sector s after write w (w > 0) of this client. */
static void sector_data(uint64_t s, uint32_t w, uint8_t *out)
{
  uint64_t x = client_tag ^ (s * 0x100000001b3ull) ^ ((uint64_t)w << 40) ^ 0x5bd1e995ull;
  for (unsigned i = 0; i < SECTOR; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(out + i, &x, 8);
  }
  memcpy(out, &s, 8); /* self-describing: sector, write */
  memcpy(out + 8, &w, 4);
}

static void expected(uint64_t s, uint8_t *out)
{
  if (model[s] == 0)
    memcpy(out, base + s * SECTOR, SECTOR);
  else
    sector_data(s, model[s], out);
}

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
  if (st.errors + st.wrong < 10) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lg-soak-client %s: ", opt_initiator);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
}

/* Check LEN bytes read at byte OFF against the model. */
static void verify(const uint8_t *buf, uint64_t off, uint32_t len)
{
  uint8_t exp[SECTOR];
  for (uint32_t k = 0; k < len; k += SECTOR) {
    uint64_t s = (off + k) / SECTOR;
    expected(s, exp);
    if (memcmp(exp, buf + k, SECTOR)) {
      uint64_t ws;
      uint32_t ww;
      memcpy(&ws, buf + k, 8);
      memcpy(&ww, buf + k + 8, 4);
      problem("WRONG DATA at sector %" PRIu64 ": expected %s %u, found %s (tag: sector %" PRIu64
              " write %u)", s, model[s] ? "write" : "the base", model[s],
              ws == s ? "another write's data" : "untagged data", ws, ww);
      st.wrong += SECTOR;
    }
  }
}

static bool task_ok(struct iscsi_context *c, struct scsi_task *t, const char *what)
{
  st.commands++;
  if (t && t->status == SCSI_STATUS_GOOD)
    return true;
  if (t && t->status == SCSI_STATUS_CHECK_CONDITION)
    problem("%s: CHECK CONDITION key 0x%x asc/ascq 0x%04x", what, (unsigned)t->sense.key,
            (unsigned)t->sense.ascq);
  else
    problem("%s failed: %s", what, iscsi_get_error(c));
  st.errors++;
  return false;
}

static bool do_read(struct iscsi_context *c, uint64_t off, uint32_t len, bool r10)
{
  struct scsi_task *t = r10 ? iscsi_read10_sync(c, 0, (uint32_t)(off / SECTOR), len, SECTOR, 0, 0, 0, 0, 0)
                            : iscsi_read16_sync(c, 0, off / SECTOR, len, SECTOR, 0, 0, 0, 0, 0);
  bool ok = task_ok(c, t, "READ");
  if (ok) {
    if (t->datain.size != (int)len) {
      problem("READ at %" PRIu64 ": %d bytes, want %u", off, t->datain.size, len);
      st.errors++;
      ok = false;
    } else {
      verify(t->datain.data, off, len);
      st.rbytes += len;
    }
  }
  if (t)
    scsi_free_scsi_task(t);
  return ok;
}

static bool do_write(struct iscsi_context *c, uint8_t *buf, uint64_t off, uint32_t len, bool fua)
{
  uint32_t w = ++nwrite;
  for (uint32_t k = 0; k < len; k += SECTOR)
    sector_data((off + k) / SECTOR, w, buf + k);
  struct scsi_task *t = iscsi_write16_sync(c, 0, off / SECTOR, buf, len, SECTOR, 0, 0, fua, 0, 0);
  bool ok = task_ok(c, t, "WRITE");
  if (t)
    scsi_free_scsi_task(t);
  /* a failed write leaves its sectors unknown: the client stops checking */
  for (uint32_t k = 0; k < len; k += SECTOR)
    model[(off + k) / SECTOR] = w;
  if (ok)
    st.wbytes += len;
  return ok;
}

static struct iscsi_context *login(void)
{
  struct iscsi_context *c = iscsi_create_context(opt_initiator);
  if (!c)
    return NULL;
  iscsi_set_targetname(c, opt_target);
  iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE);
  if (opt_reconnect)
    iscsi_set_no_ua_on_reconnect(c, 1);
  else
    iscsi_set_noautoreconnect(c, 1);
  iscsi_set_timeout(c, 60);
  if (iscsi_full_connect_sync(c, opt_portal, 0) != 0) {
    problem("login failed: %s", iscsi_get_error(c));
    st.errors++;
    iscsi_destroy_context(c);
    return NULL;
  }
  st.sessions++;
  return c;
}

/* One session: boot, work, log out.  False after an error. */
static bool session(uint8_t *buf)
{
  struct iscsi_context *c = login();
  if (!c)
    return false;
  bool ok = true;
  /* iPXE: TEST UNIT READY until the unit attention is gone */
  for (int i = 0; i < 3; i++) {
    struct scsi_task *t = iscsi_testunitready_sync(c, 0);
    st.commands++;
    bool good = t && t->status == SCSI_STATUS_GOOD;
    bool ua = t && t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION;
    if (t)
      scsi_free_scsi_task(t);
    if (good)
      break;
    if (!ua || i == 2) {
      problem("TEST UNIT READY failed: %s", iscsi_get_error(c));
      st.errors++;
      ok = false;
      goto out;
    }
  }
  struct scsi_task *t = iscsi_readcapacity10_sync(c, 0, 0, 0);
  if (!(ok = task_ok(c, t, "READ CAPACITY(10)")))
    goto out_t;
  scsi_free_scsi_task(t);
  t = iscsi_readcapacity16_sync(c, 0);
  if (!(ok = task_ok(c, t, "READ CAPACITY(16)")))
    goto out_t;
  struct scsi_readcapacity16 *rc16 = scsi_datain_unmarshall(t);
  /* the base's size, or more: the soak publishes image versions that are
   * the base with a tail appended, and a layer made after a reset is over
   * the current one; the client uses the base's sectors only */
  if (!rc16 || (rc16->returned_lba + 1) * SECTOR < disk_size) {
    problem("READ CAPACITY(16): smaller than the base");
    st.errors++;
    ok = false;
    goto out_t;
  }
  scsi_free_scsi_task(t);
  t = NULL;
  /* the boot: LBA 0, then the first MiBs in order, READ(10)s of 8-64 KiB */
  if (!(ok = do_read(c, 0, SECTOR, true)))
    goto out;
  uint64_t boot_len = (1 + rnd() % 4) << 20;
  for (uint64_t off = 0; ok && off < boot_len && off < disk_size;) {
    uint32_t len = (uint32_t)(8192u << (rnd() % 4));
    if (off + len > disk_size)
      len = (uint32_t)(disk_size - off);
    ok = do_read(c, off, len, true);
    off += len;
  }
  /* work: writes read back, random reads */
  int n = 8 + (int)(rnd() % 24);
  time_t until = time(NULL) + 1 + (opt_session_secs > 0 ? (time_t)(rnd() % (uint64_t)opt_session_secs) : 0);
  for (int i = 0; ok && (opt_session_secs > 0 ? time(NULL) < until : i < n); i++) {
    if (opt_session_secs > 0)
      usleep((useconds_t)(rnd() % 100000));
    uint32_t len = (uint32_t)(SECTOR * (1 + rnd() % (MAX_IO / SECTOR)));
    uint64_t off = (rnd() % ((disk_size - len) / SECTOR + 1)) * SECTOR;
    if (rnd() % 3) {
      ok = do_write(c, buf, off, len, rnd() % 4 == 0);
      if (ok && rnd() % 4 == 0) {
        t = iscsi_synchronizecache10_sync(c, 0, 0, 0, 0, 0);
        ok = task_ok(c, t, "SYNCHRONIZE CACHE");
        if (t)
          scsi_free_scsi_task(t);
        t = NULL;
      }
    }
    if (ok)
      ok = do_read(c, off, len, false);
  }
  goto out;
out_t:
  if (t)
    scsi_free_scsi_task(t);
out:
  /* with -a, a gateway being drained may have had libiscsi log this session
   * out already (it would log in again at the next command): nothing to end */
  if (opt_reconnect && !iscsi_is_logged_in(c)) {
    iscsi_destroy_context(c);
    return ok;
  }
  /* with -a, a drain's logout request can come while this logout is on its
   * way: libiscsi then logs in again (at another gateway) under it, and the
   * logout meets the new session's unit attention (29h/00h, a new nexus),
   * which the gateway must report; nothing of this client's disk is wrong */
  if (iscsi_logout_sync(c) != 0 && ok &&
      !(opt_reconnect && strstr(iscsi_get_error(c), "UNIT_ATTENTION"))) {
    problem("logout failed: %s", iscsi_get_error(c));
    st.errors++;
    ok = false;
  }
  iscsi_destroy_context(c);
  return ok;
}

static int room(void)
{
  int fd = open(opt_base, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size < (off_t)MAX_IO) {
    fprintf(stderr, "lg-soak-client: cannot use the base %s\n", opt_base);
    return 1;
  }
  disk_size = (uint64_t)sb.st_size;
  nsectors = disk_size / SECTOR;
  base = mmap(NULL, disk_size, PROT_READ, MAP_SHARED, fd, 0);
  model = calloc(nsectors, sizeof *model);
  uint8_t *buf = malloc(MAX_IO);
  if (base == MAP_FAILED || !model || !buf) {
    fprintf(stderr, "lg-soak-client: out of memory\n");
    return 1;
  }
  client_tag = hash_str(opt_initiator);
  time_t end = time(NULL) + opt_seconds;
  while (time(NULL) < end) {
    if (!session(buf))
      break;
    if (opt_reset && rnd() % 8 == 0) {
      char cmd[1024];
      const char *at = strstr(opt_reset, "%s");
      if (at)
        snprintf(cmd, sizeof cmd, "%.*s'%s'%s", (int)(at - opt_reset), opt_reset, opt_initiator, at + 2);
      else
        snprintf(cmd, sizeof cmd, "%s", opt_reset);
      if (system(cmd) == 0) {
        memset(model, 0, nsectors * sizeof *model);
        st.resets++;
      }
    }
    usleep((useconds_t)(rnd() % 300000));
  }
  printf("soak-client %s: sessions %" PRIu64 " commands %" PRIu64 " read-bytes %" PRIu64
         " written-bytes %" PRIu64 " resets %" PRIu64 " errors %" PRIu64 " wrong-bytes %" PRIu64 "\n",
         opt_initiator, st.sessions, st.commands, st.rbytes, st.wbytes, st.resets, st.errors,
         st.wrong);
  return st.errors || st.wrong ? 1 : 0;
}

/* The idle-socket flood. */
static int flood(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: lg-soak-client flood HOST PORT CONNECTIONS SECONDS\n");
    return 1;
  }
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
    return 1;
  int n = atoi(argv[3]);
  time_t end = time(NULL) + atol(argv[4]);
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  static const uint8_t half_bhs[14] = { 0x43, 0x87, 0, 0, 0, 0, 0, 0x40, 0, 2, 0x3d };
  uint64_t opened = 0, closed = 0, refused = 0;
  for (int i = 0; i < n; i++)
    p[i].fd = -1;
  int rot = 0;
  time_t last = time(NULL);
  while (time(NULL) < end) {
    if (time(NULL) != last) { /* make the gateway push out idle ones */
      last = time(NULL);
      for (int k = 0; k < 10 && n > 0; k++, rot = (rot + 1) % n)
        if (p[rot].fd >= 0) {
          close(p[rot].fd);
          p[rot].fd = -1;
        }
    }
    for (int i = 0; i < n; i++) {
      if (p[i].fd >= 0)
        continue;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        refused++;
        if (fd >= 0)
          close(fd);
        continue;
      }
      if (i % 4 == 0 && write(fd, half_bhs, sizeof half_bhs) < 0) {
        close(fd);
        continue;
      }
      p[i].fd = fd;
      p[i].events = POLLIN;
      opened++;
    }
    if (poll(p, (nfds_t)n, 500) > 0) {
      for (int i = 0; i < n; i++) {
        if (p[i].fd >= 0 && p[i].revents) { /* the gateway closed it */
          char b[256];
          if (read(p[i].fd, b, sizeof b) <= 0) {
            close(p[i].fd);
            p[i].fd = -1;
            closed++;
          }
        }
      }
    }
  }
  for (int i = 0; i < n; i++)
    if (p[i].fd >= 0)
      close(p[i].fd);
  free(p);
  printf("flood: opened %" PRIu64 " connections, the gateway closed %" PRIu64 ", %" PRIu64
         " refused\n", opened, closed, refused);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "flood"))
    return flood(argc - 1, argv + 1);
  int ch;
  while ((ch = getopt(argc, argv, "p:t:i:b:s:r:x:aS:")) != -1) {
    switch (ch) {
    case 'p': opt_portal = optarg; break;
    case 't': opt_target = optarg; break;
    case 'i': opt_initiator = optarg; break;
    case 'b': opt_base = optarg; break;
    case 's': opt_seconds = atol(optarg); break;
    case 'r': opt_reset = optarg; break;
    case 'x': rng_state = strtoull(optarg, NULL, 0) | 1; break;
    case 'a': opt_reconnect = true; break;
    case 'S': opt_session_secs = atol(optarg); break;
    default:
      fprintf(stderr, "usage: lg-soak-client -p PORTAL -t IQN -i INITIATOR -b BASE -s SECONDS "
                      "[-r RESET-CMD] [-x SEED] [-a] [-S SECONDS]\n");
      return 1;
    }
  }
  if (!opt_portal || !opt_target || !opt_initiator || !opt_base) {
    fprintf(stderr, "lg-soak-client: give -p, -t, -i and -b\n");
    return 1;
  }
  return room();
}
