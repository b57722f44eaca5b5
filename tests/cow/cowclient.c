/* lg-cow-client: a libiscsi initiator for the cow overlay tests.
 *
 *   lg-cow-client [-p 127.0.0.1:PORT -t IQN -i INITIATOR] [-I ISID] [-w SECONDS]
 *                 COMMAND ...
 *
 *   -I ISID      log in with this ISID (12 hex digits): an OUI-format one
 *                (00023d000001, open-iscsi's) or an EN-format one (40002723xxxx,
 *                iPXE's), to play those initiators to the boot rule
 *   -w SECONDS   stay logged in (after READ CAPACITY) this long before the
 *                command: a session that still looks alive
 *
 *   write OFFSET LENGTH BYTE [fua]
 *       One WRITE(16) of LENGTH bytes of BYTE at byte OFFSET.  Prints
 *       "write: GOOD" (exit 0) or "write: CHECK CONDITION sense key=0xK
 *       asc=0xAA ascq=0xQQ" (exit 3); other failures exit 1.
 *   logout
 *       Log in (and READ CAPACITY, and -w), then log out: exit 0 once the
 *       Logout Response has come, 1 if the logout failed.
 *   read OFFSET LENGTH BYTE
 *       One READ(16); exit 0 if every byte is BYTE, 2 if not (the first
 *       differing offset is printed), 3 on CHECK CONDITION, 1 otherwise.
 *   race BASE-FILE FIRST-BLOCK NBLOCKS
 *       Copy-up races: into each of NBLOCKS fresh 64 KiB blocks from
 *       FIRST-BLOCK on, 16 writes of 512 bytes to different sectors, all
 *       sent at once (libiscsi's async API: the gateway gets them together
 *       and runs them on its workers concurrently), then a SYNCHRONIZE CACHE;
 *       then each block is read back: every written sector must hold its
 *       data and every other sector the base's.  A copy-up that raced
 *       another write to its block loses one.  Exit 0, or 1 with the
 *       mismatches.
 *   torture BASE-FILE LOG-FILE
 *       The fault-injection writer.  Write i (numbered after the highest one
 *       LOG-FILE already records) has an offset, length, data and FUA bit
 *       that are a pure function of i (see torture_op), and after some
 *       writes comes a SYNCHRONIZE CACHE.  LOG-FILE gets a line per event,
 *       appended with write(2) the moment it happens:
 *         "r I"  a new run (a new session, after a restart) starts at write I
 *         "w I"  write I is about to be sent
 *         "c I"  write I completed (GOOD), not yet durable
 *         "d I"  write I (FUA) completed: write I is durable
 *         "s I"  a SYNCHRONIZE CACHE sent after write I completed succeeded:
 *                every write of this run <= I that completed is durable
 *       (a write sent to a gateway that was then killed, or completed but not
 *       flushed before the kill, is never made durable by a later run's flush).
 *       It runs until the connection breaks (the test kills the gateway),
 *       and exits 0 then; 2 if the target answered a command with an error
 *       status; 1 if it could not connect or log in at all.
 *   check BASE-FILE LOG-FILE
 *       Reads the whole LUN and checks every 512-byte sector against the
 *       model built from BASE-FILE and LOG-FILE: a sector must hold the data
 *       of the last durable write that covered it (or the base's data), or
 *       that of a later write that was sent but never made durable (lost or
 *       kept, but whole).  Prints the first mismatches; exit 0 or 1.
 *   fill FILE OFFSET LENGTH BYTE [OFFSET LENGTH BYTE]...
 *       Offline: overwrite LENGTH bytes of FILE at OFFSET with BYTE, for
 *       each triple (to build the image a client should see, in one process).
 *   model BASE-FILE LOG-FILE BLOCK-SIZE
 *       Offline: prints "MIN MAX WRITES DURABLE": the overlay must hold
 *       between MIN and MAX bytes (cow blocks touched by durable writes /
 *       by any write sent), given WRITES writes sent, DURABLE durable.
 *
 * Exit status 1 with a message on stderr for anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define SECTOR 512u
#define MAX_CANDIDATES 6        /* non-durable writes remembered per sector */

static const char *opt_portal = "127.0.0.1:3260";
static const char *opt_target;
static const char *opt_initiator = "iqn.2025-10.org.lungate.test:cow-client";
static const char *opt_isid;              /* -I: 12 hex digits */
static unsigned opt_wait;                 /* -w: seconds logged in before the command */

static void die(const char *fmt, const char *arg)
{
  fprintf(stderr, "lg-cow-client: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(1);
}

/* ---- the deterministic torture workload ---- */

static uint64_t splitmix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* One write of the torture workload. */
struct torture_op {
  uint64_t offset;              /* bytes, sector-aligned */
  uint32_t length;              /* bytes, whole sectors */
  bool fua;
  bool sync_after;              /* a SYNCHRONIZE CACHE follows it */
};

/* Write i on a disk of size bytes: a mix of sub-block (copy-up), whole-block,
 * block-straddling and multi-block writes, some FUA, most followed by a sync. */
static struct torture_op torture_op(uint64_t i, uint64_t size)
{
  static const uint32_t lengths[8] = { 512, 4096, 65536, 65536 + 512, 131072, 1536, 8192, 196608 };
  static const uint32_t aligns[8] = { 512, 4096, 65536, 512, 65536, 512, 512, 512 };
  uint64_t r = splitmix64(i * 2654435761u + 17);
  struct torture_op op;
  unsigned kind = r & 7;
  op.length = lengths[kind];
  /* A 1 MiB window that moves 2 KiB per write, so fresh blocks keep being
   * copied up over a long run instead of all the disk being allocated early. */
  uint64_t window = 1u << 20, start = 0;
  if (size > window)
    start = i * 2048 % (size - window + 1) / 65536 * 65536;
  else
    window = size;
  uint64_t slots = (window - op.length) / aligns[kind] + 1;
  op.offset = start + (r >> 8) % slots * aligns[kind];
  op.fua = (r >> 40) % 5 == 0;
  op.sync_after = !op.fua && (r >> 48) % 3 != 0;
  return op;
}

/* The data write i puts in its sector at byte offset off (512 bytes). */
static void torture_sector(uint64_t i, uint64_t off, uint8_t *out)
{
  uint64_t s = splitmix64(i ^ (off << 20) ^ 0x5a5a);
  for (unsigned k = 0; k < SECTOR; k += 8) {
    s = splitmix64(s);
    memcpy(out + k, &s, 8);
  }
  memcpy(out, "LGTORTUR", 8);     /* recognisable in a hex dump */
  memcpy(out + 8, &i, 8);
  memcpy(out + 16, &off, 8);
}

/* ---- the log ---- */

struct tlog {
  uint64_t nwrites;             /* writes sent: 0 .. nwrites-1 */
  uint8_t *state;               /* per write: TL_SENT, TL_DONE or TL_DURABLE */
};

enum { TL_SENT = 1, TL_DONE, TL_DURABLE };

static void tlog_read(const char *path, struct tlog *lg)
{
  memset(lg, 0, sizeof *lg);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT)
      return;
    die("cannot read the log %s", path);
  }
  size_t cap = 0;
  uint64_t run_start = 0, synced_to = 0;  /* writes [run_start, synced_to) handled */
  char kind;
  uint64_t n;
  int r;
  while ((r = fscanf(f, " %c %" SCNu64, &kind, &n)) == 2) {
    if (n >= cap) {
      size_t ncap = cap ? cap : 1024;
      while (ncap <= n)
        ncap *= 2;
      lg->state = realloc(lg->state, ncap);
      if (!lg->state)
        die("%s", "out of memory");
      memset(lg->state + cap, 0, ncap - cap);
      cap = ncap;
    }
    if (kind != 'r' && kind != 'w' && n >= lg->nwrites)
      die("log %s: an event for a write that was not sent", path);
    switch (kind) {
    case 'r':
      if (n != lg->nwrites)
        die("log %s: a run does not start after the last write", path);
      run_start = synced_to = n;
      break;
    case 'w':
      if (n != lg->nwrites)
        die("log %s: writes are not numbered in sequence", path);
      lg->nwrites = n + 1;
      lg->state[n] = TL_SENT;
      break;
    case 'c':
      lg->state[n] = TL_DONE;
      break;
    case 'd':
      lg->state[n] = TL_DURABLE;
      break;
    case 's':
      if (n < run_start)
        die("log %s: a flush for a write of an earlier run", path);
      for (; synced_to <= n; synced_to++)
        if (lg->state[synced_to] == TL_DONE)
          lg->state[synced_to] = TL_DURABLE;
      break;
    default:
      die("log %s: unknown line", path);
    }
  }
  if (r != EOF)
    die("log %s: malformed line", path);
  fclose(f);
}

static bool tlog_durable(const struct tlog *lg, uint64_t i)
{
  return lg->state[i] == TL_DURABLE;
}

static void log_line(int fd, char kind, uint64_t n)
{
  char buf[32];
  int len = snprintf(buf, sizeof buf, "%c %" PRIu64 "\n", kind, n);
  if (write(fd, buf, (size_t)len) != len) {
    perror("lg-cow-client: writing the log");
    exit(1);
  }
}

/* ---- iSCSI ---- */

static struct iscsi_context *connect_lun(uint64_t *size)
{
  if (!opt_target)
    die("%s", "give the target with -t IQN");
  struct iscsi_context *iscsi = iscsi_create_context(opt_initiator);
  if (!iscsi)
    die("%s", "iscsi_create_context failed");
  iscsi_set_targetname(iscsi, opt_target);
  iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
  iscsi_set_noautoreconnect(iscsi, 1);
  iscsi_set_timeout(iscsi, 30);
  if (opt_isid) {
    unsigned long long v = strtoull(opt_isid, NULL, 16);
    uint32_t hi = (uint32_t)(v >> 24) & 0xffffff, lo = (uint32_t)v & 0xffffff;
    if (strlen(opt_isid) != 12)
      die("%s", "-I takes 12 hex digits");
    if ((v >> 46) == 0)        /* OUI format: 24-bit OUI, 24-bit qualifier */
      iscsi_set_isid_oui(iscsi, hi, lo);
    else if ((v >> 46) == 1)   /* EN format: 24-bit enterprise number, 16-bit qualifier */
      iscsi_set_isid_en(iscsi, (uint32_t)(v >> 16) & 0xffffff, (uint32_t)v & 0xffff);
    else
      die("%s", "-I: only OUI (00...) and EN (40...) format ISIDs");
  }
  if (iscsi_full_connect_sync(iscsi, opt_portal, 0) != 0) {
    fprintf(stderr, "lg-cow-client: login to %s at %s as %s failed: %s\n", opt_target,
            opt_portal, opt_initiator, iscsi_get_error(iscsi));
    exit(1);
  }
  struct scsi_task *t = iscsi_readcapacity16_sync(iscsi, 0);
  if (!t || t->status != SCSI_STATUS_GOOD)
    die("READ CAPACITY(16) failed: %s", iscsi_get_error(iscsi));
  struct scsi_readcapacity16 *rc16 = scsi_datain_unmarshall(t);
  if (!rc16 || rc16->block_length != SECTOR)
    die("%s", "the LUN does not have 512-byte blocks");
  *size = (rc16->returned_lba + 1) * (uint64_t)rc16->block_length;
  scsi_free_scsi_task(t);
  if (opt_wait)
    sleep(opt_wait);
  return iscsi;
}

static void print_sense(const char *what, struct scsi_task *t)
{
  printf("%s: CHECK CONDITION sense key=0x%02x asc=0x%02x ascq=0x%02x\n", what,
         (unsigned)t->sense.key, (unsigned)(t->sense.ascq >> 8) & 0xff,
         (unsigned)t->sense.ascq & 0xff);
}

static int cmd_write(int argc, char **argv)
{
  if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "fua")))
    die("%s", "usage: write OFFSET LENGTH BYTE [fua]");
  uint64_t off = strtoull(argv[1], NULL, 0), len = strtoull(argv[2], NULL, 0);
  int byte = (int)strtol(argv[3], NULL, 0);
  if (off % SECTOR || len % SECTOR || len == 0 || len > (64u << 20))
    die("%s", "OFFSET and LENGTH must be whole sectors (LENGTH at most 64 MiB)");
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  uint8_t *buf = malloc(len);
  if (!buf)
    die("%s", "out of memory");
  memset(buf, byte, len);
  struct scsi_task *t = iscsi_write16_sync(iscsi, 0, off / SECTOR, buf, (uint32_t)len, SECTOR,
                                           0, 0, argc == 5, 0, 0);
  int rc;
  if (!t) {
    fprintf(stderr, "lg-cow-client: WRITE(16) failed: %s\n", iscsi_get_error(iscsi));
    rc = 1;
  } else if (t->status == SCSI_STATUS_GOOD) {
    printf("write: GOOD\n");
    rc = 0;
  } else if (t->status == SCSI_STATUS_CHECK_CONDITION) {
    print_sense("write", t);
    rc = 3;
  } else {
    printf("write: status 0x%02x\n", (unsigned)t->status);
    rc = 1;
  }
  if (t)
    scsi_free_scsi_task(t);
  free(buf);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return rc;
}

static int cmd_logout(int argc, char **argv)
{
  (void)argv;
  if (argc != 1)
    die("%s", "usage: logout");
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  int rc = 0;
  if (iscsi_logout_sync(iscsi) != 0) {
    fprintf(stderr, "lg-cow-client: logout failed: %s\n", iscsi_get_error(iscsi));
    rc = 1;
  } else {
    printf("logout: done\n");
  }
  iscsi_destroy_context(iscsi);
  return rc;
}

static int cmd_read(int argc, char **argv)
{
  if (argc != 4)
    die("%s", "usage: read OFFSET LENGTH BYTE");
  uint64_t off = strtoull(argv[1], NULL, 0), len = strtoull(argv[2], NULL, 0);
  int byte = (int)strtol(argv[3], NULL, 0);
  if (off % SECTOR || len % SECTOR || len == 0 || len > (64u << 20))
    die("%s", "OFFSET and LENGTH must be whole sectors (LENGTH at most 64 MiB)");
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  struct scsi_task *t = iscsi_read16_sync(iscsi, 0, off / SECTOR, (uint32_t)len, SECTOR, 0, 0, 0, 0, 0);
  int rc = 1;
  if (!t) {
    fprintf(stderr, "lg-cow-client: READ(16) failed: %s\n", iscsi_get_error(iscsi));
  } else if (t->status == SCSI_STATUS_CHECK_CONDITION) {
    print_sense("read", t);
    rc = 3;
  } else if (t->status != SCSI_STATUS_GOOD || t->datain.size != (int)len) {
    printf("read: status 0x%02x, %d bytes\n", (unsigned)t->status, t->datain.size);
  } else {
    rc = 0;
    for (uint64_t k = 0; k < len; k++)
      if (t->datain.data[k] != (uint8_t)byte) {
        printf("read: byte %" PRIu64 " is 0x%02x, expected 0x%02x\n", off + k,
               t->datain.data[k], (unsigned)(uint8_t)byte);
        rc = 2;
        break;
      }
    if (!rc)
      printf("read: GOOD, %" PRIu64 " bytes of 0x%02x\n", len, (unsigned)(uint8_t)byte);
  }
  if (t)
    scsi_free_scsi_task(t);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  return rc;
}

#define RACE_BLOCK 65536u
#define RACE_PER_BLOCK 16u

/* The sector (within its block) and byte of race write k into block b. */
static unsigned race_sector(uint64_t b, unsigned k) { return k * 8 + (unsigned)(b % 8); }
static uint8_t race_byte(uint64_t b, unsigned k) { return (uint8_t)(1 + (b * RACE_PER_BLOCK + k) % 251); }

struct race_state {
  unsigned pending, failed;
};

static void race_done(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
  struct race_state *st = priv;
  struct scsi_task *t = data;
  (void)iscsi;
  st->pending--;
  if (status != SCSI_STATUS_GOOD)
    st->failed++;
  if (t)
    scsi_free_scsi_task(t);
}

static int cmd_race(int argc, char **argv)
{
  if (argc != 4)
    die("%s", "usage: race BASE-FILE FIRST-BLOCK NBLOCKS");
  uint64_t first = strtoull(argv[2], NULL, 0), nblocks = strtoull(argv[3], NULL, 0);
  int bfd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (bfd < 0)
    die("cannot open the base %s", argv[1]);
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  if ((first + nblocks) * RACE_BLOCK > size || nblocks == 0 || nblocks > 4096)
    die("%s", "the blocks are not inside the LUN");
  uint8_t *data = malloc(nblocks * RACE_PER_BLOCK * SECTOR), *base = malloc(RACE_BLOCK);
  if (!data || !base)
    die("%s", "out of memory");
  struct race_state st = { 0, 0 };
  for (uint64_t b = first; b < first + nblocks; b++)
    for (unsigned k = 0; k < RACE_PER_BLOCK; k++) {
      uint8_t *d = data + ((b - first) * RACE_PER_BLOCK + k) * SECTOR;
      memset(d, race_byte(b, k), SECTOR);
      uint64_t lba = (b * RACE_BLOCK) / SECTOR + race_sector(b, k);
      if (!iscsi_write16_task(iscsi, 0, lba, d, SECTOR, SECTOR, 0, 0, 0, 0, 0, race_done, &st))
        die("queueing a write failed: %s", iscsi_get_error(iscsi));
      st.pending++;
    }
  while (st.pending > 0) {
    struct pollfd pfd = { iscsi_get_fd(iscsi), (short)iscsi_which_events(iscsi), 0 };
    if (poll(&pfd, 1, 30000) <= 0)
      die("%s", "no progress for 30 s while the race writes were in flight");
    if (iscsi_service(iscsi, pfd.revents) < 0)
      die("the connection failed: %s", iscsi_get_error(iscsi));
  }
  if (st.failed) {
    fprintf(stderr, "lg-cow-client: race: %u of the writes failed\n", st.failed);
    return 1;
  }
  struct scsi_task *t = iscsi_synchronizecache10_sync(iscsi, 0, 0, 0, 0, 0);
  if (!t || t->status != SCSI_STATUS_GOOD)
    die("SYNCHRONIZE CACHE failed: %s", iscsi_get_error(iscsi));
  scsi_free_scsi_task(t);
  uint64_t bad = 0;
  for (uint64_t b = first; b < first + nblocks; b++) {
    if (pread(bfd, base, RACE_BLOCK, (off_t)(b * RACE_BLOCK)) != (ssize_t)RACE_BLOCK)
      die("reading the base %s failed", argv[1]);
    for (unsigned k = 0; k < RACE_PER_BLOCK; k++)
      memset(base + race_sector(b, k) * SECTOR, race_byte(b, k), SECTOR);
    t = iscsi_read16_sync(iscsi, 0, b * RACE_BLOCK / SECTOR, RACE_BLOCK, SECTOR, 0, 0, 0, 0, 0);
    if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != (int)RACE_BLOCK)
      die("reading back failed: %s", iscsi_get_error(iscsi));
    for (unsigned sct = 0; sct < RACE_BLOCK / SECTOR; sct++)
      if (memcmp(t->datain.data + sct * SECTOR, base + sct * SECTOR, SECTOR) && bad++ < 10)
        printf("race: block %" PRIu64 " sector %u: expected %s, found other data\n", b, sct,
               sct % 8 == b % 8 ? "this write's data" : "the base's data");
    scsi_free_scsi_task(t);
  }
  printf("race: %" PRIu64 " blocks, %u concurrent writes each: %" PRIu64 " sectors wrong\n",
         nblocks, RACE_PER_BLOCK, bad);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  free(data);
  free(base);
  close(bfd);
  return bad ? 1 : 0;
}

/* Did a command end with a status from the target (not a broken connection)? */
static bool torture_scsi_error(struct scsi_task *t, const char *what)
{
  if (!t || t->status == SCSI_STATUS_CANCELLED || t->status == SCSI_STATUS_ERROR ||
      t->status == SCSI_STATUS_TIMEOUT)
    return false;
  if (t->status == SCSI_STATUS_CHECK_CONDITION)
    print_sense(what, t);
  else
    printf("%s: status 0x%02x\n", what, (unsigned)t->status);
  return true;
}

static int cmd_torture(int argc, char **argv)
{
  int rc = 0;
  if (argc != 3)
    die("%s", "usage: torture BASE-FILE LOG-FILE");
  struct tlog lg;
  tlog_read(argv[2], &lg);
  int logfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (logfd < 0)
    die("cannot open the log %s", argv[2]);
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  uint8_t *buf = malloc(196608);
  if (!buf)
    die("%s", "out of memory");
  log_line(logfd, 'r', lg.nwrites);
  /* Bounded, in case the gateway is never killed. */
  for (uint64_t i = lg.nwrites; i < lg.nwrites + 200000; i++) {
    struct torture_op op = torture_op(i, size);
    for (uint32_t k = 0; k < op.length; k += SECTOR)
      torture_sector(i, op.offset + k, buf + k);
    log_line(logfd, 'w', i);
    struct scsi_task *t = iscsi_write16_sync(iscsi, 0, op.offset / SECTOR, buf, op.length,
                                             SECTOR, 0, 0, op.fua, 0, 0);
    if (!t || t->status != SCSI_STATUS_GOOD) {
      fprintf(stderr, "lg-cow-client: torture: write %" PRIu64 " ended: %s\n", i,
              iscsi_get_error(iscsi));
      if (torture_scsi_error(t, "torture write"))
        rc = 2;
      break;
    }
    scsi_free_scsi_task(t);
    log_line(logfd, op.fua ? 'd' : 'c', i);
    if (!op.sync_after)
      continue;
    t = iscsi_synchronizecache10_sync(iscsi, 0, 0, 0, 0, 0);
    if (!t || t->status != SCSI_STATUS_GOOD) {
      fprintf(stderr, "lg-cow-client: torture: sync after %" PRIu64 " ended: %s\n", i,
              iscsi_get_error(iscsi));
      if (torture_scsi_error(t, "torture sync"))
        rc = 2;
      break;
    }
    scsi_free_scsi_task(t);
    log_line(logfd, 's', i);
  }
  close(logfd);
  free(buf);
  iscsi_destroy_context(iscsi);
  return rc;
}

/* Per sector: the last durable write over it (-1: the base) and the
 * non-durable writes sent after that one (more than MAX_CANDIDATES: any). */
struct sector_model {
  int64_t durable;
  uint8_t n;
  uint64_t later[MAX_CANDIDATES];
};

static struct sector_model *build_model(const struct tlog *lg, uint64_t size)
{
  uint64_t nsec = size / SECTOR;
  struct sector_model *m = calloc(nsec, sizeof *m);
  if (!m)
    die("%s", "out of memory");
  for (uint64_t s = 0; s < nsec; s++)
    m[s].durable = -1;
  for (uint64_t i = 0; i < lg->nwrites; i++) {
    struct torture_op op = torture_op(i, size);
    bool dur = tlog_durable(lg, i);
    for (uint64_t s = op.offset / SECTOR; s < (op.offset + op.length) / SECTOR; s++) {
      if (dur) {
        m[s].durable = (int64_t)i;
        m[s].n = 0;
      } else if (m[s].n < MAX_CANDIDATES) {
        m[s].later[m[s].n++] = i;
      } else {
        m[s].n = MAX_CANDIDATES + 1;   /* too many to list: not checked */
      }
    }
  }
  return m;
}

static uint64_t file_size_of(const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0)
    die("cannot stat %s", path);
  return (uint64_t)st.st_size;
}

static int cmd_check(int argc, char **argv)
{
  if (argc != 3)
    die("%s", "usage: check BASE-FILE LOG-FILE");
  struct tlog lg;
  tlog_read(argv[2], &lg);
  int bfd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (bfd < 0)
    die("cannot open the base %s", argv[1]);
  uint64_t size;
  struct iscsi_context *iscsi = connect_lun(&size);
  if (size != file_size_of(argv[1]))
    die("the LUN's size differs from the base file %s", argv[1]);
  struct sector_model *m = build_model(&lg, size);
  const uint32_t chunk = 1u << 20;
  uint8_t *base = malloc(chunk), exp[SECTOR];
  uint64_t bad = 0, checked = 0, unchecked = 0;
  for (uint64_t off = 0; off < size; off += chunk) {
    uint32_t n = size - off < chunk ? (uint32_t)(size - off) : chunk;
    if (pread(bfd, base, n, (off_t)off) != (ssize_t)n)
      die("reading the base %s failed", argv[1]);
    struct scsi_task *t = iscsi_read16_sync(iscsi, 0, off / SECTOR, n, SECTOR, 0, 0, 0, 0, 0);
    if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != (int)n) {
      fprintf(stderr, "lg-cow-client: READ(16) at %" PRIu64 " failed: %s\n", off,
              t ? "SCSI error" : iscsi_get_error(iscsi));
      return 1;
    }
    for (uint32_t k = 0; k < n; k += SECTOR) {
      const uint8_t *got = t->datain.data + k;
      const struct sector_model *sm = &m[(off + k) / SECTOR];
      if (sm->n > MAX_CANDIDATES) {
        unchecked++;
        continue;
      }
      checked++;
      bool ok;
      if (sm->durable < 0) {
        ok = !memcmp(got, base + k, SECTOR);
      } else {
        torture_sector((uint64_t)sm->durable, off + k, exp);
        ok = !memcmp(got, exp, SECTOR);
      }
      for (unsigned c = 0; !ok && c < sm->n; c++) {
        torture_sector(sm->later[c], off + k, exp);
        ok = !memcmp(got, exp, SECTOR);
      }
      if (ok)
        continue;
      if (bad++ < 10) {
        uint64_t who = 0, at = 0;
        bool tagged = !memcmp(got, "LGTORTUR", 8);
        if (tagged) {
          memcpy(&who, got + 8, 8);
          memcpy(&at, got + 16, 8);
        }
        char what[96];
        if (tagged)
          snprintf(what, sizeof what, "data of write %" PRIu64 " (for offset %" PRIu64 ")", who, at);
        else
          snprintf(what, sizeof what, "%s", !memcmp(got, base + k, SECTOR) ? "the base's data" : "untagged data");
        char want[48];
        if (sm->durable < 0)
          snprintf(want, sizeof want, "the base's data");
        else
          snprintf(want, sizeof want, "data of write %" PRId64, sm->durable);
        printf("MISMATCH at byte %" PRIu64 " (64 KiB block %" PRIu64 "): expected %s"
               " (or one of %u later non-durable writes), found %s\n", off + k,
               (off + k) / 65536, want, (unsigned)sm->n, what);
      }
    }
    scsi_free_scsi_task(t);
  }
  printf("check: %" PRIu64 " writes sent, %" PRIu64 " sectors checked, %" PRIu64
         " not checked, %" PRIu64 " wrong\n", lg.nwrites, checked, unchecked, bad);
  iscsi_logout_sync(iscsi);
  iscsi_destroy_context(iscsi);
  free(base);
  free(m);
  close(bfd);
  return bad ? 1 : 0;
}

static int cmd_fill(int argc, char **argv)
{
  if (argc < 5 || (argc - 2) % 3)
    die("%s", "usage: fill FILE OFFSET LENGTH BYTE [OFFSET LENGTH BYTE]...");
  int fd = open(argv[1], O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    die("cannot open %s", argv[1]);
  for (int a = 2; a + 2 < argc; a += 3) {
    uint64_t off = strtoull(argv[a], NULL, 0), len = strtoull(argv[a + 1], NULL, 0);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
      die("%s", "out of memory");
    memset(buf, (int)strtol(argv[a + 2], NULL, 0), len);
    if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
      die("writing %s failed", argv[1]);
    free(buf);
  }
  close(fd);
  return 0;
}

static int cmd_model(int argc, char **argv)
{
  if (argc != 4)
    die("%s", "usage: model BASE-FILE LOG-FILE BLOCK-SIZE");
  struct tlog lg;
  tlog_read(argv[2], &lg);
  uint64_t size = file_size_of(argv[1]), block = strtoull(argv[3], NULL, 0);
  if (!block || size % SECTOR)
    die("%s", "bad BLOCK-SIZE or base size");
  uint64_t nblocks = (size + block - 1) / block, durable = 0;
  uint8_t *touched = calloc(nblocks, 1);     /* 1: any write, 2: a durable one */
  if (!touched)
    die("%s", "out of memory");
  for (uint64_t i = 0; i < lg.nwrites; i++) {
    struct torture_op op = torture_op(i, size);
    bool dur = tlog_durable(&lg, i);
    durable += dur;
    for (uint64_t b = op.offset / block; b <= (op.offset + op.length - 1) / block; b++)
      if (touched[b] < (dur ? 2 : 1))
        touched[b] = dur ? 2 : 1;
  }
  uint64_t lo = 0, hi = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    lo += touched[b] == 2;
    hi += touched[b] != 0;
  }
  printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", lo * block, hi * block,
         lg.nwrites, durable);
  free(touched);
  return 0;
}

int main(int argc, char **argv)
{
  int ch;
  while ((ch = getopt(argc, argv, "+p:t:i:I:w:")) != -1) {
    switch (ch) {
    case 'I': opt_isid = optarg; break;
    case 'w': opt_wait = (unsigned)strtoul(optarg, NULL, 10); break;
    case 'p': opt_portal = optarg; break;
    case 't': opt_target = optarg; break;
    case 'i': opt_initiator = optarg; break;
    default:
      fprintf(stderr, "usage: lg-cow-client [-p HOST:PORT] [-t IQN] [-i INITIATOR] "
                      "write|read|logout|race|torture|check|fill|model ...\n");
      return 1;
    }
  }
  argc -= optind;
  argv += optind;
  if (argc < 1)
    die("%s", "give a command: write, torture, check or model");
  if (!strcmp(argv[0], "write"))
    return cmd_write(argc, argv);
  if (!strcmp(argv[0], "read"))
    return cmd_read(argc, argv);
  if (!strcmp(argv[0], "logout"))
    return cmd_logout(argc, argv);
  if (!strcmp(argv[0], "race"))
    return cmd_race(argc, argv);
  if (!strcmp(argv[0], "torture"))
    return cmd_torture(argc, argv);
  if (!strcmp(argv[0], "check"))
    return cmd_check(argc, argv);
  if (!strcmp(argv[0], "fill"))
    return cmd_fill(argc, argv);
  if (!strcmp(argv[0], "model"))
    return cmd_model(argc, argv);
  die("unknown command %s", argv[0]);
  return 1;
}
