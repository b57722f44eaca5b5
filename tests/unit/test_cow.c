/* The cow backstore: name escaping, copy-up (and page-cache-only reads), the
 * map across reopen, a torn map slot, base identity and quota, image
 * versions — table-driven where it fits. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "util/log.h"
#include "run_suite.h"

static const struct { const char *name, *stem; } esc_rows[] = {
  { "iqn.2025-10.org.school:pc1", "iqn.2025-10.org.school:pc1" },
  { "IQN.2025-10.ORG.School:PC1", "iqn.2025-10.org.school:pc1" },  /* RFC 3722: one client */
  { "../../etc/passwd", "%2e.%2f..%2fetc%2fpasswd" },
  { "a/b", "a%2fb" },
  { ".", "%2e" },
  { "..", "%2e." },
  { "", "%00" },
  { "tab\there", "tab%09here" },
  { "100%", "100%25" },
  { "eui.02004567A425678D", "eui.02004567a425678d" },
  { "naa.52004567BA64678D", "naa.52004567ba64678d" },
  { "caf\xc3\xa9", "caf%c3%a9" },
};

START_TEST(test_escape)
{
  char stem[COW_NAME_MAX + 1], back[512], norm[512];
  cow_name_escape(esc_rows[_i].name, stem);
  ck_assert_msg(!strcmp(stem, esc_rows[_i].stem), "row %d \"%s\": stem \"%s\", want \"%s\"",
                _i, esc_rows[_i].name, stem, esc_rows[_i].stem);
  ck_assert_msg(!strchr(stem, '/') && strcmp(stem, ".") && strcmp(stem, ".."), "row %d: unsafe", _i);
  if (esc_rows[_i].name[0]) {
    ck_assert_int_eq(cow_name_unescape(stem, back, sizeof back), 0);
    cow_name_normalize(esc_rows[_i].name, norm);
    ck_assert_msg(!strcmp(back, norm), "row %d: round trip \"%s\"", _i, back);
  }
}
END_TEST

START_TEST(test_escape_long)
{
  char name[224], other[224], a[COW_NAME_MAX + 1], b[COW_NAME_MAX + 1];
  memset(name, '/', 223);
  name[223] = '\0';
  strcpy(other, name);
  other[222] = 'x';
  cow_name_escape(name, a);
  cow_name_escape(other, b);
  ck_assert_uint_le(strlen(a), COW_NAME_MAX);
  ck_assert(strchr(a, '~') && !strchr(a, '/'));
  ck_assert_str_ne(a, b);                          /* the hash tells them apart */
}
END_TEST

/* ---- a base of 1 MiB + 3 blocks of 512 (not a multiple of the cow block) ---- */

#define BASE_SIZE ((1u << 20) + 1536)
#define CB 65536u

static char dir[] = "/tmp/lungate-cow-XXXXXX";
static char base_path[256], ov_dir[256];
static void *base_h;
static uint8_t *base_data;

static void setup(void)
{
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(base_path, sizeof base_path, "%s/base.img", dir);
  snprintf(ov_dir, sizeof ov_dir, "%s/ov", dir);
  base_data = malloc(BASE_SIZE);
  for (uint32_t i = 0; i < BASE_SIZE; i++)
    base_data[i] = (uint8_t)(i * 7 + (i >> 9));
  int fd = open(base_path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ck_assert(fd >= 0 && write(fd, base_data, BASE_SIZE) == BASE_SIZE);
  close(fd);
  json_t *j = json_pack("{s:s}", "dev", base_path);
  struct lg_bs_open_args a = { .name = "base", .readonly = true };
  base_h = lg_file_backstore.open(j, &a);
  json_decref(j);
  ck_assert_ptr_nonnull(base_h);
}

static void teardown(void)
{
  lg_file_backstore.close(base_h);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  strcpy(dir, "/tmp/lungate-cow-XXXXXX");
  free(base_data);
}

static void *open_cow(const char *extra_key, uint64_t extra)
{
  json_t *j = json_pack("{s:s,s:b}", "overlay_dir", ov_dir, "per_initiator", 1);
  if (extra_key)
    json_object_set_new(j, extra_key, json_integer((json_int_t)extra));
  struct lg_bs_open_args a = { .name = "c", .base_ops = &lg_file_backstore, .base_h = base_h };
  void *t = lg_cow_backstore.open(j, &a);
  json_decref(j);
  ck_assert_msg(t, "open: %s", lg_get_error());
  return t;
}

static const struct { const char *what; uint64_t off; uint32_t len; uint64_t blocks; } cu_rows[] = {
  { "512 bytes inside a block", 1000 * 512, 512, 1 },
  { "one whole block", 3 * CB, CB, 1 },
  { "straddling two blocks", CB - 512, 1024, 2 },
  { "the partial last block", BASE_SIZE - 512, 512, 1 },
  { "first byte", 0, 512, 1 },
  { "across the whole disk", 0, BASE_SIZE, 17 },
};

START_TEST(test_copy_up)
{
  void *t = open_cow(NULL, 0);
  void *v = lg_cow_backstore.open_client(t, "iqn.x:pc1");
  ck_assert_ptr_nonnull(v);
  uint8_t *buf = malloc(BASE_SIZE), *want = malloc(BASE_SIZE);
  memcpy(want, base_data, BASE_SIZE);
  memset(want + cu_rows[_i].off, 0xee, cu_rows[_i].len);
  memset(buf, 0xee, cu_rows[_i].len);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, buf, cu_rows[_i].len, cu_rows[_i].off, 0), 0);
  ck_assert_int_eq(lg_cow_backstore.pread(v, buf, BASE_SIZE, 0), 0);
  ck_assert_msg(!memcmp(buf, want, BASE_SIZE), "row %d (%s): merged view wrong", _i, cu_rows[_i].what);
  /* the same from the page cache only (just read, so cached): what the
   * receiving thread answers without a worker */
  memset(buf, 0, BASE_SIZE);
  ck_assert_int_eq(lg_cow_backstore.pread_nowait(v, buf, BASE_SIZE, 0), 0);
  ck_assert_msg(!memcmp(buf, want, BASE_SIZE), "row %d (%s): nowait view wrong", _i, cu_rows[_i].what);
  ck_assert_msg(cow_allocated(v) == cu_rows[_i].blocks * CB, "row %d (%s): %llu allocated",
                _i, cu_rows[_i].what, (unsigned long long)cow_allocated(v));
  /* another client and the template still see the base */
  void *w = lg_cow_backstore.open_client(t, "iqn.x:pc2");
  ck_assert_int_eq(lg_cow_backstore.pread(w, buf, BASE_SIZE, 0), 0);
  ck_assert(!memcmp(buf, base_data, BASE_SIZE));
  ck_assert_int_eq(lg_cow_backstore.pread(t, buf, BASE_SIZE, 0), 0);
  ck_assert(!memcmp(buf, base_data, BASE_SIZE));
  ck_assert_int_eq(lg_cow_backstore.pwrite(t, buf, 512, 0, 0), -EROFS);
  /* reopen: flushed data and map come back */
  ck_assert_int_eq(lg_cow_backstore.flush(v), 0);
  lg_cow_backstore.close(v);
  v = lg_cow_backstore.open_client(t, "IQN.X:PC1");
  ck_assert_int_eq(lg_cow_backstore.pread(v, buf, BASE_SIZE, 0), 0);
  ck_assert_msg(!memcmp(buf, want, BASE_SIZE), "row %d: lost across reopen", _i);
  /* trim returns whole blocks to the base */
  ck_assert_int_eq(lg_cow_backstore.trim(v, BASE_SIZE, 0), 0);
  ck_assert_uint_eq(cow_allocated(v), 0);
  ck_assert_int_eq(lg_cow_backstore.pread(v, buf, BASE_SIZE, 0), 0);
  ck_assert(!memcmp(buf, base_data, BASE_SIZE));
  lg_cow_backstore.close(w);
  lg_cow_backstore.close(v);
  lg_cow_backstore.close(t);
  free(buf);
  free(want);
}
END_TEST

START_TEST(test_torn_map_and_unflushed)
{
  void *t = open_cow(NULL, 0);
  void *v = lg_cow_backstore.open_client(t, "pc");
  uint8_t blk[512];
  memset(blk, 0x11, sizeof blk);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, 0, LG_BS_FUA), 0); /* gen 1 */
  memset(blk, 0x22, sizeof blk);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, 5 * CB, LG_BS_FUA), 0); /* gen 2 */
  char path[600];
  ck_assert_int_eq(cow_overlay_path(t, "pc", path, sizeof path), 0);
  struct cow_info info;
  ck_assert_int_eq(cow_info_read(path, &info), 0);
  ck_assert_uint_eq(info.allocated, 2 * CB);
  ck_assert_str_eq(info.client, "pc");
  ck_assert(cow_in_use(path));
  lg_cow_backstore.close(v);
  ck_assert(!cow_in_use(path));
  /* tear the newest map slot (generation 2 lives in slot 0 of page 0) */
  int fd = open(path, O_RDWR);
  ck_assert_int_eq(pwrite(fd, "garbage", 7, 8192 + 100), 7);
  close(fd);
  v = lg_cow_backstore.open_client(t, "pc");
  uint8_t buf[512];
  ck_assert_int_eq(lg_cow_backstore.pread(v, buf, 512, 0), 0);
  ck_assert_uint_eq(buf[0], 0x11);                     /* generation 1 survives */
  ck_assert_int_eq(lg_cow_backstore.pread(v, buf, 512, 5 * CB), 0);
  ck_assert_uint_eq(buf[0], base_data[5 * CB]);        /* the torn update is gone */
  lg_cow_backstore.close(v);
  ck_assert_int_eq(cow_overlay_remove(t, "pc"), 0);
  ck_assert_int_eq(access(path, F_OK), -1);
  lg_cow_backstore.close(t);
}
END_TEST

START_TEST(test_quota_and_identity)
{
  void *t = open_cow("quota", 2 * CB);
  void *v = lg_cow_backstore.open_client(t, "pc");
  uint8_t blk[512] = { 1 };
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, 0, 0), 0);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, CB, 0), 0);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, 2 * CB, 0), -ENOSPC);
  ck_assert_int_eq(lg_cow_backstore.pwrite(v, blk, 512, 512, 0), 0); /* allocated: fine */
  lg_cow_backstore.close(v);
  lg_cow_backstore.close(t);
  /* change the base: the overlay is refused with a message */
  int fd = open(base_path, O_WRONLY);
  ck_assert_int_eq(pwrite(fd, "different", 9, 0), 9);
  close(fd);
  t = open_cow(NULL, 0);
  ck_assert_ptr_null(lg_cow_backstore.open_client(t, "pc"));
  ck_assert_msg(strstr(lg_get_error(), "different base"), "%s", lg_get_error());
  lg_cow_backstore.close(t);
}
END_TEST

/* Versions: a layer stays over the version it was made over (across a
 * stage and commit of new versions, and a reopen); new layers take the
 * current one; a version with another logical block size is refused. */
START_TEST(test_versions)
{
  char v2_path[300];
  snprintf(v2_path, sizeof v2_path, "%s/v2.img", dir);
  uint8_t *v2 = malloc(BASE_SIZE);
  memset(v2, 0x22, BASE_SIZE);
  int fd = open(v2_path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ck_assert(fd >= 0 && write(fd, v2, BASE_SIZE) == BASE_SIZE);
  close(fd);
  json_t *bdef = json_pack("{s:s,s:s,s:s}", "plugin", "fileio", "name", "base", "dev", base_path);
  json_t *j = json_pack("{s:s,s:b}", "overlay_dir", ov_dir, "per_initiator", 1);
  struct lg_bs_open_args a = { .name = "c", .base_ops = &lg_file_backstore, .base_h = base_h,
                               .base_def = bdef };
  void *t = lg_cow_backstore.open(j, &a);
  ck_assert_msg(t, "open: %s", lg_get_error());
  ck_assert_uint_eq(cow_current_version(t), 0);
  void *old = lg_cow_backstore.open_client(t, "pc-old");
  uint8_t got[512];
  ck_assert_int_eq(lg_cow_backstore.pread(old, got, 512, 0), 0);
  ck_assert_mem_eq(got, base_data, 512);

  /* versions 1 (the base) and 2, staged and committed as a reload does */
  uint8_t sum[COW_SUM_LEN];
  char hex[2 * COW_SUM_LEN + 1];
  ck_assert_int_eq(cow_current_sum(t, sum), 0);
  cow_sum_hex(sum, hex);
  json_t *k = json_deep_copy(j);
  json_object_set_new(k, "versions", json_pack("[{s:i,s:s,s:s},{s:i,s:s}]", "id", 1, "file",
                                               base_path, "sum", hex, "id", 2, "file", v2_path));
  json_object_set_new(k, "current", json_integer(2));
  ck_assert_msg(cow_versions_stage(t, k) == 0, "stage: %s", lg_get_error());
  ck_assert_uint_eq(cow_current_version(t), 0); /* not yet */
  cow_versions_finish(t, true);
  ck_assert_uint_eq(cow_current_version(t), 2);
  ck_assert(cow_view_outdated(old));
  ck_assert_int_eq(lg_cow_backstore.pread(old, got, 512, 0), 0);
  ck_assert_mem_eq(got, base_data, 512);        /* the live layer keeps its version */
  void *fresh = lg_cow_backstore.open_client(t, "pc-new");
  ck_assert_int_eq(lg_cow_backstore.pread(fresh, got, 512, 0), 0);
  ck_assert_mem_eq(got, v2, 512);               /* a new layer: the current version */
  ck_assert(!cow_view_outdated(fresh));
  ck_assert_uint_eq(cow_version_views(t, 1), 0); /* the old view holds the implicit base */
  ck_assert_uint_eq(cow_version_views(t, 2), 1);
  lg_cow_backstore.close(old);
  old = lg_cow_backstore.open_client(t, "pc-old"); /* reopened: over version 1 */
  ck_assert_msg(old, "%s", lg_get_error());
  ck_assert_int_eq(lg_cow_backstore.pread(old, got, 512, 0), 0);
  ck_assert_mem_eq(got, base_data, 512);
  ck_assert_uint_eq(cow_version_views(t, 1), 1);
  struct cow_info info;
  char path[600];
  ck_assert_int_eq(cow_overlay_path(t, "pc-old", path, sizeof path), 0);
  ck_assert_int_eq(cow_info_read(path, &info), 0);
  ck_assert_int_eq(cow_version_of_sum(t, info.base_sum), 1);
  ck_assert(cow_sum_outdated(t, info.base_sum));
  /* a failed reload leaves the versions as they were */
  json_object_set_new(k, "current", json_integer(1));
  ck_assert_int_eq(cow_versions_stage(t, k), 0);
  cow_versions_finish(t, false);
  ck_assert_uint_eq(cow_current_version(t), 2);
  /* "current" naming no version is refused */
  json_object_set_new(k, "current", json_integer(7));
  ck_assert_int_eq(cow_versions_stage(t, k), -1);
  ck_assert_msg(strstr(lg_get_error(), "current"), "%s", lg_get_error());
  lg_cow_backstore.close(old);
  lg_cow_backstore.close(fresh);
  lg_cow_backstore.close(t);
  /* opened with its versions: the current one is checked against its sum */
  json_object_set_new(k, "current", json_integer(2));
  t = lg_cow_backstore.open(k, &a);
  ck_assert_msg(t, "open with versions: %s", lg_get_error());
  ck_assert_uint_eq(cow_current_version(t), 2);
  lg_cow_backstore.close(t);
  json_object_set_new(json_array_get(json_object_get(k, "versions"), 1), "sum", json_string(hex));
  ck_assert_ptr_null(lg_cow_backstore.open(k, &a)); /* v2's recorded sum is v1's: refused */
  ck_assert_msg(strstr(lg_get_error(), "not what was published"), "%s", lg_get_error());
  json_decref(k);
  json_decref(j);
  json_decref(bdef);
  free(v2);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("cow");
  TCase *tc = tcase_create("names");
  tcase_add_loop_test(tc, test_escape, 0, sizeof esc_rows / sizeof esc_rows[0]);
  tcase_add_test(tc, test_escape_long);
  suite_add_tcase(s, tc);
  TCase *io = tcase_create("io");
  tcase_add_checked_fixture(io, setup, teardown);
  tcase_add_loop_test(io, test_copy_up, 0, sizeof cu_rows / sizeof cu_rows[0]);
  tcase_add_test(io, test_torn_map_and_unflushed);
  tcase_add_test(io, test_quota_and_identity);
  tcase_add_test(io, test_versions);
  tcase_set_timeout(io, 30);
  suite_add_tcase(s, io);
  return lg_run_suite(s);
}
