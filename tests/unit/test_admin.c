/* targetcli's object commands on a config (src/target/admin.c): each row
 * runs its setup commands on an empty config, then its command, and checks
 * either the error (a substring, and the config unchanged) or one value of
 * the new config ("targets/0/tpgs/0/luns/1/index=1"; "#" is an array's
 * length).  "@F" stands for a 1 MiB file, "@D" for its folder. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target/admin.h"
#include "run_suite.h"

static char dir[] = "/tmp/lungate-unit-admin-XXXXXX";

#define T "iqn.2025-10.org.test:t"
#define TP "/iscsi/" T "/tpg1"
#define SETUP_T "/backstores/fileio create a @F", "/iscsi create " T
#define SETUP_LUN SETUP_T, TP "/luns create /backstores/fileio/a"

struct row {
  const char *what;
  const char *setup[6];            /* commands run first; NULL ends */
  const char *cmd;
  const char *error;               /* NULL: succeeds */
  const char *check;               /* PATH=VALUE of the new config */
  const char *listen;              /* the gateway's --listen, or NULL */
};

static const struct row rows[] = {
  { "fileio takes the file's size", { NULL }, "/backstores/fileio create a @F", NULL,
    "storage_objects/0/size=1048576", NULL },
  { "fileio of a new file keeps the size given", { NULL },
    "/backstores/fileio create n @D/new.img 2M", NULL, "storage_objects/0/size=2097152", NULL },
  { "fileio of a new file needs a size", { NULL }, "/backstores/fileio create n @D/new.img",
    "does not exist: give a size", NULL, NULL },
  { "a new target gets tpg1", { NULL }, "/iscsi create " T, NULL, "targets/0/tpgs/0/tag=1", NULL },
  { "and targetcli's default portal", { NULL }, "/iscsi create " T, NULL,
    "targets/0/tpgs/0/portals/0/ip_address=0.0.0.0", NULL },
  { "or the gateway's --listen", { NULL }, "/iscsi create " T, NULL,
    "targets/0/tpgs/0/portals/0/port=3999", "127.0.0.1:3999" },
  { "no generated ACLs", { NULL }, "/iscsi create " T, NULL,
    "targets/0/tpgs/0/attributes/generate_node_acls=0", NULL },
  { "a LUN takes the next free number", { SETUP_T, TP "/luns create /backstores/fileio/a lun0" },
    TP "/luns create /backstores/fileio/a", NULL, "targets/0/tpgs/0/luns/1/index=1", NULL },
  { "a new ACL maps every LUN", { SETUP_LUN }, TP "/acls create iqn.2025-10.org.test:c1", NULL,
    "targets/0/tpgs/0/node_acls/0/mapped_luns/#=1", NULL },
  { "a new LUN is mapped in every ACL", { SETUP_T, TP "/acls create iqn.2025-10.org.test:c1" },
    TP "/luns create /backstores/fileio/a", NULL,
    "targets/0/tpgs/0/node_acls/0/mapped_luns/0/tpg_lun=0", NULL },
  { "add_mapped_luns=false maps nothing", { SETUP_LUN },
    TP "/acls create iqn.2025-10.org.test:c1 add_mapped_luns=false", NULL,
    "targets/0/tpgs/0/node_acls/0/mapped_luns/#=0", NULL },
  { "an IPv6 portal", { SETUP_T }, TP "/portals create ::1 3261", NULL,
    "targets/0/tpgs/0/portals/1/ip_address=::1", NULL },
  { "set auth", { SETUP_T }, TP " set auth userid=room password=room-secret-1", NULL,
    "targets/0/tpgs/0/chap_password=room-secret-1", NULL },
  { "set attribute on an ACL", { SETUP_T, TP "/acls create iqn.2025-10.org.test:c1" },
    TP "/acls/iqn.2025-10.org.test:c1 set attribute nopin_timeout=15", NULL,
    "targets/0/tpgs/0/node_acls/0/attributes/nopin_timeout=15", NULL },
  { "delete in reverse order empties it",
    { SETUP_LUN, TP "/luns delete lun0", "/iscsi delete " T }, "/backstores/fileio delete a",
    NULL, "storage_objects/#=0", NULL },
  { "no such path", { NULL }, "/iscsi/" T "/tpg1/luns create /backstores/fileio/a",
    "No such path /iscsi/" T, NULL, NULL },
  { "no such backstore", { NULL }, "/backstores/tape create a b", "No such path /backstores/tape",
    NULL, NULL },
  { "a target twice", { SETUP_T }, "/iscsi create " T, "Target " T " exists already", NULL, NULL },
  { "a name used by another backstore", { SETUP_T }, "/backstores/block create a @F",
    "Storage object fileio/a exists already", NULL, NULL },
  { "a LUN still mapped", { SETUP_LUN, TP "/acls create iqn.2025-10.org.test:c1" },
    TP "/luns delete lun0", "still mapped in node ACL iqn.2025-10.org.test:c1", NULL, NULL },
  { "a storage object still used", { SETUP_LUN }, "/backstores/fileio delete a",
    "still used by LUN 0 of " T, NULL, NULL },
  { "a base still used", { SETUP_T, "/backstores/cow create c /backstores/fileio/a @D" },
    "/backstores/fileio delete a", "the base of cow/c", NULL, NULL },
  { "a cow base that does not exist", { NULL }, "/backstores/cow create c /backstores/fileio/x @D",
    "names no storage object", NULL, NULL },
  { "a cow layer needs somewhere for its overlays", { SETUP_T },
    "/backstores/cow create c /backstores/fileio/a", "give overlay_dir", NULL, NULL },
  { "a cow layer of RBD clones", { SETUP_T },
    "/backstores/cow create c /backstores/fileio/a overlay_pool=clones", NULL,
    "storage_objects/1/overlay_pool=clones", NULL },
  { "not an iSCSI name", { NULL }, "/iscsi create disk1", "is not an iSCSI name", NULL, NULL },
  { "positional after key=value", { NULL }, "/backstores/fileio create name=a @F",
    "positional parameters come before key=value", NULL, NULL },
  { "an unknown verb", { NULL }, "/iscsi frob", "Command not found frob", NULL, NULL },
  { "a short CHAP secret", { SETUP_T }, TP " set auth userid=u password=short",
    "12 bytes or more", NULL, NULL },
};

static char *subst(const char *s)
{
  size_t n = strlen(s) * 2 + 256;
  char *out = malloc(n), *o = out;
  for (; *s; s++) {
    if (s[0] == '@' && (s[1] == 'D' || s[1] == 'F')) {
      o += sprintf(o, s[1] == 'D' ? "%s" : "%s/a.img", dir);
      s++;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
  return out;
}

/* Run "PATH VERB ARGS..." (split at spaces) on *cfg; 0 and *cfg replaced, or
 * -1 with *msg. */
static int run(json_t **cfg, const char *line, const char *listen, char **msg)
{
  char *text = subst(line), *save = NULL;
  const char *words[32];
  size_t n = 0;
  for (char *w = strtok_r(text, " ", &save); w && n < 32; w = strtok_r(NULL, " ", &save))
    words[n++] = w;
  const char *portals[1] = { listen };
  struct lg_admin_ctx ctx = { .cwd = dir, .portals = portals, .n_portals = listen ? 1 : 0 };
  json_t *out = NULL;
  int r = lg_admin_run(*cfg, &ctx, words[0], n > 1 ? words[1] : NULL, n > 2 ? n - 2 : 0,
                       words + 2, &out, msg);
  if (r == 0 && out) {
    json_decref(*cfg);
    *cfg = out;
  }
  free(text);
  return r;
}

/* The value at "a/0/b" as text ("#": an array's length). */
static void value_at(const json_t *j, const char *path, char *buf, size_t len)
{
  char p[256], *save = NULL;
  snprintf(p, sizeof p, "%s", path);
  for (char *k = strtok_r(p, "/", &save); k && j; k = strtok_r(NULL, "/", &save)) {
    if (!strcmp(k, "#")) {
      snprintf(buf, len, "%zu", json_array_size(j));
      return;
    }
    j = json_is_array(j) ? json_array_get(j, (size_t)atoi(k)) : json_object_get(j, k);
  }
  if (json_is_string(j))
    snprintf(buf, len, "%s", json_string_value(j));
  else if (json_is_integer(j))
    snprintf(buf, len, "%lld", (long long)json_integer_value(j));
  else
    snprintf(buf, len, "%s", j ? "(not a string or number)" : "(absent)");
}

START_TEST(test_command)
{
  const struct row *r = &rows[_i];
  json_t *cfg = lg_admin_empty();
  char *msg = NULL;
  for (size_t k = 0; k < 6 && r->setup[k]; k++) {
    ck_assert_msg(run(&cfg, r->setup[k], r->listen, &msg) == 0, "row %d (%s): setup \"%s\": %s",
                  _i, r->what, r->setup[k], msg);
    free(msg);
    msg = NULL;
  }
  json_t *before = json_deep_copy(cfg);
  int rc = run(&cfg, r->cmd, r->listen, &msg);
  if (r->error) {
    ck_assert_msg(rc < 0, "row %d (%s): succeeded: %s", _i, r->what, msg);
    ck_assert_msg(msg && strstr(msg, r->error), "row %d (%s): error \"%s\", want \"...%s...\"",
                  _i, r->what, msg, r->error);
    ck_assert_msg(json_equal(before, cfg), "row %d (%s): failed but changed the config", _i,
                  r->what);
  } else {
    ck_assert_msg(rc == 0, "row %d (%s): failed: %s", _i, r->what, msg);
    char want[256], got[512];
    const char *eq = strchr(r->check, '=');
    snprintf(want, sizeof want, "%.*s", (int)(eq - r->check), r->check);
    value_at(cfg, want, got, sizeof got);
    ck_assert_msg(!strcmp(got, eq + 1), "row %d (%s): %s is \"%s\", want \"%s\"", _i, r->what,
                  want, got, eq + 1);
  }
  free(msg);
  json_decref(before);
  json_decref(cfg);
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
  Suite *s = suite_create("admin");
  TCase *tc = tcase_create("admin");
  tcase_add_loop_test(tc, test_command, 0, sizeof rows / sizeof rows[0]);
  suite_add_tcase(s, tc);
  int failed = lg_run_suite(s);
  unlink(path);
  rmdir(dir);
  return failed;
}
