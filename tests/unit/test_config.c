/* Configuration loading: valid files load, each invalid one fails with a
 * message naming the file, the key and the fault.  "@D" stands for a temp dir
 * holding a.img (1 MiB). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "target/model.h"

static char dir[] = "/tmp/lungate-unit-XXXXXX";

#define SO_A "{\"plugin\":\"fileio\",\"name\":\"a\",\"dev\":\"@D/a.img\"}"
#define TGT(luns, extra) "\"targets\":[{\"wwn\":\"iqn.2025-10.org.test:t\",\"fabric\":\"iscsi\"," \
  "\"tpgs\":[{\"tag\":1,\"enable\":true,\"attributes\":{\"generate_node_acls\":1}," \
  "\"portals\":[{\"ip_address\":\"0.0.0.0\",\"port\":3260}],\"luns\":" luns extra "}]}]"
#define LUN0 "[{\"index\":0,\"storage_object\":\"/backstores/fileio/a\"}]"

static const struct {
  const char *json;
  const char *error;               /* NULL: loads; else a substring of the message */
} rows[] = {
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, "") "}", NULL },
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, ",\"parameters\":{\"InitialR2T\":\"Yes\",\"MaxBurstLength\":\"65536\"}") ",\"unknown_key\":[1,2]}", NULL },
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, ",\"node_acls\":[{\"node_wwn\":\"iqn.x:*\",\"mapped_luns\":[{\"index\":3,\"tpg_lun\":0,\"write_protect\":true}]}]") "}", NULL },
  { "[]", "top level must be a JSON object" },
  { "{\"storage_objects\":[" SO_A "]}", NULL }, /* no target yet: serves nothing */
  { "{}", NULL },
  { "{\"storage_objects\":[{\"name\":\"a\",\"dev\":\"x\"}]," TGT(LUN0, "") "}", "storage_objects[0].plugin: missing" },
  { "{\"storage_objects\":[{\"plugin\":\"pscsi\",\"name\":\"a\"}]," TGT(LUN0, "") "}", "storage_objects[0].plugin: unknown plugin \"pscsi\"" },
  { "{\"storage_objects\":[{\"plugin\":\"rbd\",\"name\":\"a\"}]," TGT(LUN0, "") "}", "storage object \"a\": \"image\" is missing" },
  { "{\"storage_objects\":[{\"plugin\":\"user\",\"name\":\"a\",\"config\":\"rbd/p\"}]," TGT(LUN0, "") "}", "expected \"rbd/POOL/IMAGE" },
  { "{\"storage_objects\":[{\"plugin\":\"user\",\"name\":\"a\",\"config\":\"glfs/x\"}]," TGT(LUN0, "") "}", "\"qcow/PATH\" and \"rbd/POOL/IMAGE;...\"" },
  { "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\"}]," TGT(LUN0, "") "}", "key \"dev\" is missing" },
  { "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\",\"dev\":\"@D/missing.img\"}]," TGT(LUN0, "") "}", "cannot open \"@D/missing.img\": No such file" },
  { "{\"storage_objects\":[" SO_A "," SO_A "]," TGT(LUN0, "") "}", "storage_objects[1].name: \"a\" is used twice" },
  { "{\"storage_objects\":[" SO_A "]," TGT("[{\"index\":0,\"storage_object\":\"/backstores/fileio/b\"}]", "") "}", "targets[0].tpgs[0].luns[0].storage_object: \"/backstores/fileio/b\" names no storage object" },
  { "{\"storage_objects\":[" SO_A "]," TGT("[{\"storage_object\":\"/backstores/fileio/a\"}]", "") "}", "targets[0].tpgs[0].luns[0].index: missing" },
  { "{\"storage_objects\":[" SO_A "]," TGT("[{\"index\":0,\"storage_object\":\"/backstores/fileio/a\"},{\"index\":0,\"storage_object\":\"/backstores/fileio/a\"}]", "") "}", "luns[1].index: LUN 0 is defined twice" },
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, ",\"parameters\":{\"InitialR2T\":\"Sure\"}") "}", "parameters.InitialR2T: \"Sure\" must be" },
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, ",\"node_acls\":[{\"mapped_luns\":[]}]") "}", "node_acls[0].node_wwn: missing" },
  { "{\"storage_objects\":[" SO_A "]," TGT(LUN0, ",\"node_acls\":[{\"node_wwn\":\"iqn.x:y\",\"mapped_luns\":[{\"index\":0,\"tpg_lun\":7}]}]") "}", "mapped_luns[0].tpg_lun: the TPG has no LUN 7" },
  { "{\"storage_objects\":[" SO_A "],\"targets\":[{\"wwn\":\"bogus\",\"tpgs\":[]}]}", "targets[0].wwn: missing or not an iSCSI name" },
  { "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\",\"dev\":\"@D/a.img\",\"attributes\":{\"block_size\":777}}]," TGT(LUN0, "") "}", "block_size must be 512" },
};

static char *subst(const char *s)
{
  size_t n = strlen(s) * 2 + 256;
  char *out = malloc(n), *o = out;
  for (; *s; s++) {
    if (s[0] == '@' && s[1] == 'D') {
      o += sprintf(o, "%s", dir);
      s++;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
  return out;
}

START_TEST(test_load)
{
  char *text = subst(rows[_i].json);
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  ck_assert_msg(j, "row %d: test JSON does not parse: %s", _i, je.text);
  char *err = NULL;
  struct lg_model *m = lg_model_load(j, "test.json", &err);
  if (!rows[_i].error) {
    ck_assert_msg(m, "row %d: failed: %s", _i, err);
    ck_assert_uint_eq(m->n_targets, strstr(rows[_i].json, "\"targets\"") ? 1 : 0);
    if (strstr(rows[_i].json, "\"storage_objects\""))
      ck_assert_uint_eq(m->storage[0]->size, 1 << 20);
  } else {
    char *want = subst(rows[_i].error);
    ck_assert_msg(!m, "row %d: loaded, want error \"%s\"", _i, want);
    ck_assert_msg(err && strstr(err, want) && !strncmp(err, "test.json: ", 11),
                  "row %d: error \"%s\", want \"test.json: ...%s...\"", _i, err, want);
    free(want);
  }
  free(err);
  lg_model_unref(m);
  json_decref(j);
  free(text);
}
END_TEST

START_TEST(test_params_and_acls)
{
  char *text = subst(rows[1].json);
  json_t *j = json_loads(text, 0, NULL);
  char *err = NULL;
  struct lg_model *m = lg_model_load(j, "test.json", &err);
  ck_assert_msg(m, "%s", err);
  struct lg_tpg *tpg = lg_target_tpg(lg_model_find_target(m, "IQN.2025-10.ORG.TEST:T"));
  ck_assert_ptr_nonnull(tpg);
  ck_assert(tpg->params.initial_r2t);
  ck_assert_uint_eq(tpg->params.max_burst_length, 65536);
  ck_assert_uint_le(tpg->params.first_burst_length, 65536);
  ck_assert_ptr_nonnull(json_object_get(m->json, "unknown_key")); /* kept for saving */
  lg_model_unref(m);
  json_decref(j);
  free(text);

  text = subst(rows[2].json);
  j = json_loads(text, 0, NULL);
  m = lg_model_load(j, "test.json", &err);
  ck_assert_msg(m, "%s", err);
  tpg = lg_target_tpg(&m->targets[0]);
  struct lg_lun_view *v;
  ck_assert_int_eq(lg_tpg_resolve(tpg, "iqn.x:pc1", &v), 1);   /* the pattern ACL */
  ck_assert_uint_eq(v[0].index, 3);
  ck_assert(v[0].write_protect);
  free(v);
  ck_assert_int_eq(lg_tpg_resolve(tpg, "iqn.other:pc1", &v), 1); /* generated ACL */
  ck_assert_uint_eq(v[0].index, 0);
  ck_assert(!v[0].write_protect);
  free(v);
  tpg->generate_node_acls = false;
  ck_assert_int_eq(lg_tpg_resolve(tpg, "iqn.other:pc1", &v), -13);
  lg_model_unref(m);
  json_decref(j);
  free(text);
}
END_TEST

/* write text (with @D substituted) to @D/<name>; the path, malloc'd */
static char *write_config(const char *name, const char *json)
{
  char *text = subst(json), *path;
  ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  free(text);
  return path;
}

/* A reload shares unchanged storage objects, reopens changed ones, and the
 * last model holding an object closes it; save writes the JSON back. */
START_TEST(test_reload_and_save)
{
  char *err = NULL;
  char *path = write_config("r.json", rows[0].json);
  struct lg_model *m1 = lg_model_load_file(path, &err);
  ck_assert_msg(m1, "%s", err);
  struct lg_model *m2 = lg_model_reload_file(path, m1, &err);
  ck_assert_msg(m2, "%s", err);
  ck_assert_uint_eq(m2->generation, 2);
  ck_assert_ptr_eq(m2->storage[0], m1->storage[0]);   /* unchanged: kept open */
  ck_assert_int_eq(atomic_load(&m1->storage[0]->refs), 2);
  lg_model_unref(m1);                                 /* m2 keeps it */
  ck_assert_uint_eq(m2->storage[0]->size, 1 << 20);

  free(write_config("r.json", "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\","
                    "\"dev\":\"@D/a.img\",\"readonly\":true}]," TGT(LUN0, "") ",\"x\":{\"y\":1}}"));
  struct lg_model *m3 = lg_model_reload_file(path, m2, &err);
  ck_assert_msg(m3, "%s", err);
  ck_assert_ptr_ne(m3->storage[0], m2->storage[0]);   /* changed: opened anew */
  ck_assert(m3->storage[0]->readonly);
  ck_assert(!m2->storage[0]->readonly);

  free(write_config("r.json", "{\"targets\": ["));    /* broken: no model */
  ck_assert_ptr_null(lg_model_reload_file(path, m3, &err));
  ck_assert_msg(err && strstr(err, "not valid JSON"), "%s", err);
  free(err);

  char *out;
  ck_assert_int_ge(asprintf(&out, "%s/saved.json", dir), 0);
  ck_assert_int_eq(lg_model_save(m3, out), 0);
  json_t *back = json_load_file(out, 0, NULL);
  ck_assert(json_equal(back, m3->json));             /* every key, unknown ones too */
  ck_assert_ptr_nonnull(json_object_get(back, "x"));
  struct stat st;
  ck_assert_int_eq(stat(out, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  json_decref(back);
  unlink(out);
  free(out);
  lg_model_unref(m2);
  lg_model_unref(m3);
  unlink(path);
  free(path);
}
END_TEST

static const struct { const char *pat, *name; bool match; } match_rows[] = {
  { "iqn.x:*", "iqn.x:pc1", true },
  { "IQN.X:*", "iqn.x:PC1", true },
  { "iqn.x:pc*-a", "iqn.x:pc12-a", true },
  { "iqn.x:pc*-a", "iqn.x:pc12-b", false },
  { "*", "anything", true },
  { "iqn.x:pc1", "iqn.x:pc10", false },
  { "*:*:*", "a:b", false },
};

START_TEST(test_name_match)
{
  ck_assert_msg(lg_name_match(match_rows[_i].pat, match_rows[_i].name) == match_rows[_i].match,
                "row %d: %s vs %s", _i, match_rows[_i].pat, match_rows[_i].name);
}
END_TEST

int main(void)
{
  if (!mkdtemp(dir))
    return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/a.img", dir);
  FILE *f = fopen(path, "w");
  if (!f || ftruncate(fileno(f), 1 << 20) < 0)
    return 1;
  fclose(f);
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_loop_test(tc, test_load, 0, sizeof rows / sizeof rows[0]);
  tcase_add_test(tc, test_params_and_acls);
  tcase_add_test(tc, test_reload_and_save);
  tcase_add_loop_test(tc, test_name_match, 0, sizeof match_rows / sizeof match_rows[0]);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  unlink(path);
  rmdir(dir);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
