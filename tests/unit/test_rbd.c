/* tcmu-runner's rbd config string (rtslib's "user" plugin) as an rbd storage
 * object's JSON: lg_rbd_user_config, table-driven. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backends/rbd.h"
#include "run_suite.h"
#include "util/log.h"

static const struct {
  const char *config;
  const char *json;                /* compact JSON with sorted keys; NULL: refused */
  const char *error;               /* a substring of the refusal */
} rows[] = {
  { "rbd/rbd/disk", "{\"image\":\"disk\",\"pool\":\"rbd\"}", NULL },
  { "rbd/pool/img@snap1", "{\"image\":\"img\",\"pool\":\"pool\",\"snapshot\":\"snap1\"}", NULL },
  { "rbd/p/ns/img", "{\"image\":\"img\",\"namespace\":\"ns\",\"pool\":\"p\"}", NULL },
  { "rbd/rbd/disk;osd_op_timeout=30;conf=/etc/ceph/ceph.conf;id=iscsi",
    "{\"conf\":\"/etc/ceph/ceph.conf\",\"image\":\"disk\",\"osd_op_timeout\":30,"
    "\"pool\":\"rbd\",\"user\":\"iscsi\"}", NULL },
  { "rbd/rbd/disk;unknown=1", "{\"image\":\"disk\",\"pool\":\"rbd\"}", NULL },
  { "rbd/", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd/pool", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd/pool/", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd//img", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd/a/b/c/d", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd/a//c", NULL, "expected \"rbd/POOL/IMAGE" },
  { "rbd/rbd/disk;osd_op_timeout=-1", NULL, "osd_op_timeout=-1 is not a number" },
  { "rbd/rbd/disk;osd_op_timeout=", NULL, "is not a number" },
  { "rbd/rbd/disk;conf", NULL, "option \"conf\" is not KEY=VALUE" },
  { "qcow/x.qcow2", NULL, "" },
};

START_TEST(test_user_config)
{
  lg_set_error("%s", "");
  json_t *j = lg_rbd_user_config(rows[_i].config, "so");
  if (rows[_i].json) {
    ck_assert_msg(j, "row %d: refused: %s", _i, lg_get_error());
    char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(!strcmp(got, rows[_i].json), "row %d: got %s, want %s", _i, got,
                  rows[_i].json);
    free(got);
    json_decref(j);
  } else {
    ck_assert_msg(!j, "row %d: accepted, want a refusal", _i);
    ck_assert_msg(strstr(lg_get_error(), rows[_i].error), "row %d: error \"%s\", want \"%s\"",
                  _i, lg_get_error(), rows[_i].error);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("rbd");
  TCase *tc = tcase_create("user_config");
  tcase_add_loop_test(tc, test_user_config, 0, (int)(sizeof rows / sizeof rows[0]));
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
