/* The escapers that keep hostile strings (initiator names) from breaking a
 * log line or the metrics text, the log level names, and the per-LUN
 * counters: each row is an input and exactly what must come out. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ops/metrics.h"
#include "util/log.h"
#include "run_suite.h"

static const struct {
  const char *in;
  const char *quoted;                /* lg_quote: a logfmt value */
  const char *label;                 /* lg_metrics_label: a Prometheus label value */
} rows[] = {
  { "iqn.2025-10.org.school:pc07", "iqn.2025-10.org.school:pc07", "iqn.2025-10.org.school:pc07" },
  { "", "\"\"", "" },
  { "No such file or directory", "\"No such file or directory\"", "No such file or directory" },
  { "a\"b", "\"a\\\"b\"", "a\\\"b" },
  { "back\\slash", "\"back\\\\slash\"", "back\\\\slash" },
  { "k=v", "\"k=v\"", "k=v" },
  { "line\nforged=1", "\"line\\nforged=1\"", "line\\nforged=1" },
  { "esc\x1b[31m", "\"esc\\x1b[31m\"", "esc%1B[31m" },
  { "tab\there", "\"tab\\x09here\"", "tab%09here" },
  { "50%", "50%", "50%25" },
  { "caf\xc3\xa9", "caf\xc3\xa9", "caf%C3%A9" },
  { "\x7f", "\"\\x7f\"", "%7F" },
};

START_TEST(test_quote)
{
  char out[LG_Q_MAX];
  lg_quote(rows[_i].in, out, sizeof out);
  ck_assert_msg(!strcmp(out, rows[_i].quoted), "row %d: lg_quote gave [%s], want [%s]", _i, out,
                rows[_i].quoted);
}
END_TEST

START_TEST(test_label)
{
  char out[256];
  lg_metrics_label(out, sizeof out, rows[_i].in);
  ck_assert_msg(!strcmp(out, rows[_i].label), "row %d: label [%s], want [%s]", _i, out,
                rows[_i].label);
}
END_TEST

/* Overlong input is cut, never overflows, and never ends inside an escape. */
START_TEST(test_truncate)
{
  char in[2000], out[64];
  memset(in, '"', sizeof in - 1);
  in[sizeof in - 1] = '\0';
  memset(out, 'X', sizeof out);
  lg_quote(in, out, sizeof out);
  size_t n = strlen(out);
  ck_assert_msg(n < sizeof out && out[0] == '"' && out[n - 1] == '"' && out[n - 2] == '"' &&
                out[n - 3] == '\\', "lg_quote of 2000 quotes into 64 bytes: [%s]", out);
  lg_metrics_label(out, sizeof out, in);
  n = strlen(out);
  ck_assert_msg(n < sizeof out && n % 2 == 0, "label of 2000 quotes: [%s]", out);
}
END_TEST

START_TEST(test_levels)
{
  static const struct { const char *name; int level; } lv[] = {
    { "error", LG_ERROR }, { "warn", LG_WARN }, { "warning", LG_WARN }, { "info", LG_INFO },
    { "debug", LG_DEBUG }, { "INFO", -1 }, { "", -1 }, { "loud", -1 },
  };
  for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
    enum lg_level l = LG_INFO;
    int r = lg_log_parse_level(lv[i].name, &l);
    ck_assert_msg(lv[i].level < 0 ? r < 0 : r == 0 && (int)l == lv[i].level,
                  "level row %zu (%s): r=%d level=%d", i, lv[i].name, r, (int)l);
  }
}
END_TEST

/* What one command adds: its kind, bytes, CHECK CONDITION, a latency bucket. */
START_TEST(test_counters)
{
  static const struct {
    uint8_t opcode, status;
    uint32_t in, out;
    int kind;
  } cmd[] = {
    { 0x28, 0x00, 4096, 0, LG_OP_READ },     /* READ(10) */
    { 0x88, 0x00, 512, 0, LG_OP_READ },      /* READ(16) */
    { 0x2a, 0x00, 0, 8192, LG_OP_WRITE },    /* WRITE(10) */
    { 0x8e, 0x02, 0, 0, LG_OP_WRITE },       /* WRITE AND VERIFY(16), failed */
    { 0x12, 0x00, 36, 0, LG_OP_OTHER },      /* INQUIRY: not read bytes */
    { 0x00, 0x02, 0, 0, LG_OP_OTHER },       /* TEST UNIT READY, CHECK CONDITION */
  };
  struct lg_lun_stats *st = calloc(1, sizeof *st);
  for (size_t i = 0; i < sizeof cmd / sizeof cmd[0]; i++)
    lg_stats_command(st, cmd[i].opcode, cmd[i].status, cmd[i].in, cmd[i].out, lg_now_ns());
  ck_assert_uint_eq(st->commands[LG_OP_READ], 2);
  ck_assert_uint_eq(st->commands[LG_OP_WRITE], 2);
  ck_assert_uint_eq(st->commands[LG_OP_OTHER], 2);
  ck_assert_uint_eq(st->bytes_read, 4096 + 512);
  ck_assert_uint_eq(st->bytes_written, 8192);
  ck_assert_uint_eq(st->check_conditions, 2);
  uint64_t n = 0;
  for (int b = 0; b < LG_LAT_BUCKETS; b++)
    n += st->latency[b];
  ck_assert_uint_eq(n, 6);
  lg_stats_command(NULL, 0x28, 0, 1, 0, 0); /* no LUN: nothing to count, no crash */
  free(st);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("obs");
  TCase *tc = tcase_create("escape");
  tcase_add_loop_test(tc, test_quote, 0, sizeof rows / sizeof rows[0]);
  tcase_add_loop_test(tc, test_label, 0, sizeof rows / sizeof rows[0]);
  tcase_add_test(tc, test_truncate);
  tcase_add_test(tc, test_levels);
  tcase_add_test(tc, test_counters);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
