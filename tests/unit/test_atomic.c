/* Atomicity of WRITE ATOMIC(16), COMPARE AND WRITE and ORWRITE(16) against
 * other commands on the same LUN.  The backstore below is a memory buffer
 * whose pwrite stops halfway through a write that is marked slow and waits
 * (up to a bound) for the test to say it has run a second command: a read
 * must see the blocks wholly old or wholly new, and a plain write must land
 * wholly before or after, never in between. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scsi/scsi.h"
#include "run_suite.h"

#define BS 512u
#define NB 16u
static uint8_t disk[64 * BS];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool slow_armed, half_written, other_done;

static bool yes(void *h) { (void)h; return true; }

static int mem_pread(void *h, void *buf, size_t n, uint64_t off)
{
  (void)h;
  memcpy(buf, disk + off, n);
  return 0;
}

/* With mu held: wait for other_done, up to ms milliseconds; its value. */
static bool wait_other_done(long ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += ms % 1000 * 1000000L;
  if (until.tv_nsec >= 1000000000L)
    until.tv_sec++, until.tv_nsec -= 1000000000L;
  while (!other_done)
    if (pthread_cond_timedwait(&cv, &mu, &until))
      break;
  return other_done;
}

/* The first write after slow_armed is set writes half, tells the test, and
 * waits until the test ran its other command (or 300 ms passed: the other
 * command was blocked, as it should be). */
static int mem_pwrite(void *h, const void *buf, size_t n, uint64_t off, unsigned flags)
{
  (void)h;
  (void)flags;
  pthread_mutex_lock(&mu);
  bool slow = slow_armed;
  slow_armed = false;
  pthread_mutex_unlock(&mu);
  if (!slow) {
    memcpy(disk + off, buf, n);
    return 0;
  }
  memcpy(disk + off, buf, n / 2);
  pthread_mutex_lock(&mu);
  half_written = true;
  pthread_cond_broadcast(&cv);
  wait_other_done(300);
  pthread_mutex_unlock(&mu);
  memcpy(disk + off + n / 2, (const uint8_t *)buf + n / 2, n - n / 2);
  return 0;
}

/* the page cache, as ->map_cached hands it out */
static const void *mem_map(void *h, size_t n, uint64_t off)
{
  (void)h;
  (void)n;
  return disk + off;
}

static const struct lg_backstore_ops ops = { .name = "mem", .can_write = yes,
                                             .pread = mem_pread, .pwrite = mem_pwrite,
                                             .map_cached = mem_map };
static struct lg_storage so = { .name = "mem", .plugin = "mem", .ops = &ops,
                                .size = sizeof disk, .block_size = BS, .serial = "1" };
static struct lg_lun_view view = { .so = &so };
static struct scsi_nexus nx = { .luns = &view, .n_luns = 1 };

struct cmd {
  struct scsi_task t;
  uint8_t buf[2 * NB * BS];
};

static void prepare(struct cmd *c, const uint8_t *cdb, uint8_t fill)
{
  memset(&c->t, 0, sizeof c->t);
  memcpy(c->t.cdb, cdb, 16);
  c->t.lun = &view;
  c->t.nexus = &nx;
  c->t.buf = c->buf;
  c->t.bufcap = sizeof c->buf;
  memset(c->buf, fill, sizeof c->buf);
  ck_assert_int_eq(scsi_parse(&c->t), 0);
  c->t.edtl = c->t.spdtl;
}

static void *exec_thread(void *arg)
{
  scsi_exec(&((struct cmd *)arg)->t);
  return NULL;
}

/* Start the slow command in a thread, wait until it wrote half, run the
 * other command here, let the slow one finish. */
static void race(struct cmd *slow, struct cmd *other)
{
  pthread_t th;
  pthread_mutex_lock(&mu);
  slow_armed = true;
  half_written = other_done = false;
  pthread_mutex_unlock(&mu);
  ck_assert_int_eq(pthread_create(&th, NULL, exec_thread, slow), 0);
  pthread_mutex_lock(&mu);
  while (!half_written)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  scsi_exec(&other->t);
  pthread_mutex_lock(&mu);
  other_done = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(th, NULL);
  ck_assert_uint_eq(slow->t.status, SCSI_STATUS_GOOD);
  ck_assert_uint_eq(other->t.status, SCSI_STATUS_GOOD);
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != v)
      return false;
  return true;
}

static const uint8_t write_atomic[16] = { 0x9c, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, NB };
static const uint8_t write10[16] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, NB };
static const uint8_t read10[16] = { 0x28, 0, 0, 0, 0, 8, 0, 0, NB };
static const uint8_t orwrite[16] = { 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, NB };
static const uint8_t caw[16] = { 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8 };

START_TEST(test_read_sees_atomic_write_whole)
{
  static struct cmd slow, other;
  memset(disk, 0xaa, sizeof disk);
  prepare(&slow, write_atomic, 0xbb);
  prepare(&other, read10, 0);
  race(&slow, &other);
  bool old = all(other.buf, NB * BS, 0xaa), new = all(other.buf, NB * BS, 0xbb);
  ck_assert_msg(old || new, "a READ during WRITE ATOMIC saw %02x...%02x", other.buf[0],
                other.buf[NB * BS - 1]);
  ck_assert(all(disk + 8 * BS, NB * BS, 0xbb));
}
END_TEST

START_TEST(test_write_not_inside_atomic_write)
{
  static struct cmd slow, other;
  memset(disk, 0xaa, sizeof disk);
  prepare(&slow, write_atomic, 0xbb);
  prepare(&other, write10, 0xcc);
  race(&slow, &other);
  bool first = all(disk + 8 * BS, NB * BS, 0xbb), second = all(disk + 8 * BS, NB * BS, 0xcc);
  ck_assert_msg(first || second, "a WRITE landed inside a WRITE ATOMIC: %02x...%02x",
                disk[8 * BS], disk[8 * BS + NB * BS - 1]);
}
END_TEST

START_TEST(test_orwrite_is_atomic)
{
  static struct cmd slow, other;
  memset(disk, 0x01, sizeof disk);
  prepare(&slow, orwrite, 0x10);
  prepare(&other, read10, 0);
  race(&slow, &other);
  ck_assert_msg(all(other.buf, NB * BS, 0x01) || all(other.buf, NB * BS, 0x11),
                "a READ during ORWRITE saw %02x...%02x", other.buf[0], other.buf[NB * BS - 1]);
  ck_assert(all(disk + 8 * BS, NB * BS, 0x11));
}
END_TEST

START_TEST(test_caw_is_atomic)
{
  static struct cmd slow, other;
  memset(disk, 0x00, sizeof disk);
  prepare(&slow, caw, 0x00);
  memset(slow.buf + 8 * BS, 0x77, 8 * BS);     /* compare with zeroes, write 0x77 */
  prepare(&other, write10, 0x55);
  race(&slow, &other);
  ck_assert_msg(all(disk + 8 * BS, 8 * BS, 0x77) || all(disk + 8 * BS, 8 * BS, 0x55),
                "a WRITE landed inside COMPARE AND WRITE");
}
END_TEST

static void *atomic_thread(void *arg)
{
  scsi_exec(&((struct cmd *)arg)->t);
  pthread_mutex_lock(&mu);
  other_done = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  return NULL;
}

/* A cached read sent from the mapping: the data is not copied, and an
 * atomic write waits until the transport says the kernel has the bytes. */
START_TEST(test_mapped_read_holds_off_atomic_write)
{
  static struct cmd read, write;
  memset(disk, 0xaa, sizeof disk);
  prepare(&read, read10, 0);
  read.t.may_map = true;
  ck_assert(scsi_exec_nowait(&read.t));
  ck_assert_ptr_eq(read.t.data_in, disk + 8 * BS);
  ck_assert_uint_eq(read.t.data_in_len, NB * BS);
  ck_assert(all(read.buf, NB * BS, 0)); /* not copied */

  prepare(&write, write_atomic, 0xbb);
  pthread_mutex_lock(&mu);
  other_done = false;
  pthread_mutex_unlock(&mu);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, atomic_thread, &write), 0);
  pthread_mutex_lock(&mu);
  bool early = wait_other_done(1000);
  pthread_mutex_unlock(&mu);
  ck_assert_msg(!early, "WRITE ATOMIC ran while a mapped read was being sent");
  ck_assert(all(read.t.data_in, NB * BS, 0xaa));

  ck_assert_int_eq(scsi_data_in_release(&read.t, false), 0);
  ck_assert_ptr_null(read.t.data_in);
  pthread_join(th, NULL);
  ck_assert_uint_eq(write.t.status, SCSI_STATUS_GOOD);
  ck_assert(all(disk + 8 * BS, NB * BS, 0xbb));
}
END_TEST

/* A send that would wait takes the data into the task's buffer first and
 * lets the LU go; without may_map (a data digest) nothing is mapped. */
START_TEST(test_mapped_read_into_buf)
{
  static struct cmd read, write;
  memset(disk, 0xaa, sizeof disk);
  prepare(&read, read10, 0);
  read.t.may_map = true;
  ck_assert(scsi_exec_nowait(&read.t));
  ck_assert_int_eq(scsi_data_in_release(&read.t, true), 0);
  ck_assert_ptr_null(read.t.data_in);
  ck_assert(all(read.buf, NB * BS, 0xaa));
  prepare(&write, write_atomic, 0xbb);
  scsi_exec(&write.t); /* would hang if the read had kept the LU locked */
  ck_assert_uint_eq(write.t.status, SCSI_STATUS_GOOD);

  prepare(&read, read10, 0);
  ck_assert(!scsi_exec_nowait(&read.t)); /* no ->pread_nowait either: a worker reads */
  ck_assert_ptr_null(read.t.data_in);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("atomic");
  TCase *tc = tcase_create("atomic");
  tcase_add_test(tc, test_read_sees_atomic_write_whole);
  tcase_add_test(tc, test_write_not_inside_atomic_write);
  tcase_add_test(tc, test_orwrite_is_atomic);
  tcase_add_test(tc, test_caw_is_atomic);
  tcase_add_test(tc, test_mapped_read_holds_off_atomic_write);
  tcase_add_test(tc, test_mapped_read_into_buf);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
