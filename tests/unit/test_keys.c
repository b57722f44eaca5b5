/* Text key parsing and negotiation, table-driven. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/keys.h"
#include "run_suite.h"

static const struct {
  const char *key, *value;
  enum iscsi_key_result result;
  const char *answer;              /* "" for no answer (declarative) */
} neg_rows[] = {
  /* iPXE's set */
  { "HeaderDigest", "None", KEY_OK, "HeaderDigest=None" },
  { "DataDigest", "None", KEY_OK, "DataDigest=None" },
  { "MaxConnections", "1", KEY_OK, "MaxConnections=1" },
  { "InitialR2T", "Yes", KEY_OK, "InitialR2T=Yes" },
  { "ImmediateData", "No", KEY_OK, "ImmediateData=No" },
  { "MaxRecvDataSegmentLength", "8192", KEY_OK, "" },
  { "MaxBurstLength", "262144", KEY_OK, "MaxBurstLength=262144" },
  { "FirstBurstLength", "65536", KEY_OK, "FirstBurstLength=65536" },
  { "DefaultTime2Wait", "0", KEY_OK, "DefaultTime2Wait=2" },
  { "DefaultTime2Retain", "0", KEY_OK, "DefaultTime2Retain=0" },
  { "MaxOutstandingR2T", "1", KEY_OK, "MaxOutstandingR2T=1" },
  { "DataPDUInOrder", "Yes", KEY_OK, "DataPDUInOrder=Yes" },
  { "DataSequenceInOrder", "Yes", KEY_OK, "DataSequenceInOrder=Yes" },
  { "ErrorRecoveryLevel", "0", KEY_OK, "ErrorRecoveryLevel=0" },
  /* libiscsi-like and edge values */
  { "HeaderDigest", "CRC32C,None", KEY_OK, "HeaderDigest=CRC32C" },
  { "HeaderDigest", "None,CRC32C", KEY_OK, "HeaderDigest=None" },
  { "DataDigest", "MD5", KEY_REJECT, "DataDigest=Reject" },
  { "InitialR2T", "No", KEY_OK, "InitialR2T=No" },
  { "ImmediateData", "Yes", KEY_OK, "ImmediateData=Yes" },
  { "MaxBurstLength", "16776192", KEY_OK, "MaxBurstLength=1048576" },
  { "MaxBurstLength", "0x200", KEY_OK, "MaxBurstLength=512" },
  { "MaxBurstLength", "511", KEY_REJECT, "MaxBurstLength=Reject" },
  { "MaxBurstLength", "-1", KEY_REJECT, "MaxBurstLength=Reject" },
  { "MaxBurstLength", "99999999999", KEY_REJECT, "MaxBurstLength=Reject" },
  { "ErrorRecoveryLevel", "2", KEY_OK, "ErrorRecoveryLevel=0" },
  { "ErrorRecoveryLevel", "3", KEY_REJECT, "ErrorRecoveryLevel=Reject" },
  { "InitialR2T", "maybe", KEY_REJECT, "InitialR2T=Reject" },
  { "IFMarker", "Yes", KEY_OK, "IFMarker=No" },
  { "OFMarkInt", "1-65535", KEY_IRRELEVANT, "OFMarkInt=Irrelevant" },
  { "X-com.example.Foo", "1", KEY_NOT_OPERATIONAL, "" },
};

START_TEST(test_negotiate)
{
  struct lg_params offer;
  lg_params_default(&offer);
  struct iscsi_params p;
  iscsi_params_init(&p, &offer);
  struct iscsi_text resp = { 0 };
  enum iscsi_key_result r =
    iscsi_negotiate_key(&p, &offer, neg_rows[_i].key, neg_rows[_i].value, &resp);
  ck_assert_msg(r == neg_rows[_i].result, "row %d (%s=%s): result %d, want %d", _i,
                neg_rows[_i].key, neg_rows[_i].value, r, neg_rows[_i].result);
  const char *got = resp.len ? resp.buf : "";
  ck_assert_msg(!strcmp(got, neg_rows[_i].answer), "row %d (%s=%s): answer \"%s\", want \"%s\"",
                _i, neg_rows[_i].key, neg_rows[_i].value, got, neg_rows[_i].answer);
  iscsi_text_free(&resp);
}
END_TEST

START_TEST(test_negotiate_effects)
{
  struct lg_params offer;
  lg_params_default(&offer);
  struct iscsi_params p;
  iscsi_params_init(&p, &offer);
  struct iscsi_text resp = { 0 };
  iscsi_negotiate_key(&p, &offer, "MaxRecvDataSegmentLength", "8192", &resp);
  iscsi_negotiate_key(&p, &offer, "InitialR2T", "Yes", &resp);
  iscsi_negotiate_key(&p, &offer, "ImmediateData", "No", &resp);
  iscsi_negotiate_key(&p, &offer, "HeaderDigest", "CRC32C", &resp);
  ck_assert_uint_eq(p.max_recv_dsl_initiator, 8192);
  ck_assert_uint_eq(p.max_recv_dsl_target, offer.max_recv_data_segment_length);
  ck_assert(p.initial_r2t);
  ck_assert(!p.immediate_data);
  ck_assert(p.header_digest);
  iscsi_text_free(&resp);
}
END_TEST

static const struct {
  const char *text;                /* pairs separated by '|' (becomes NUL) */
  int n;                           /* pairs, or -errno */
} parse_rows[] = {
  { "A=1|", 1 },
  { "A=1|B=|C=x=y|", 3 },
  { "A=1||", 1 },
  { "A1|", -22 },
  { "=1|", -22 },
  { "A=1", -22 },               /* no terminating NUL */
  { "", 0 },
};

START_TEST(test_parse)
{
  char buf[128];
  size_t len = strlen(parse_rows[_i].text);
  memcpy(buf, parse_rows[_i].text, len);
  for (size_t k = 0; k < len; k++)
    if (buf[k] == '|')
      buf[k] = '\0';
  struct iscsi_kv kv[8];
  int n = iscsi_keys_parse(buf, len, kv, 8);
  ck_assert_msg(n == parse_rows[_i].n, "row %d \"%s\": %d pairs, want %d", _i,
                parse_rows[_i].text, n, parse_rows[_i].n);
  if (_i == 1) {
    ck_assert_str_eq(kv[1].key, "B");
    ck_assert_str_eq(kv[1].value, "");
    ck_assert_str_eq(kv[2].value, "x=y");
  }
}
END_TEST

START_TEST(test_parse_limits)
{
  char *buf = malloc(ISCSI_KEY_VALUE_MAX + 64);
  memset(buf, 'v', ISCSI_KEY_VALUE_MAX + 64);
  memcpy(buf, "K=", 2);
  buf[ISCSI_KEY_VALUE_MAX + 2] = '\0';
  struct iscsi_kv kv[2];
  ck_assert_int_eq(iscsi_keys_parse(buf, ISCSI_KEY_VALUE_MAX + 3, kv, 2), 1);
  memset(buf, 'v', ISCSI_KEY_VALUE_MAX + 64);
  memcpy(buf, "K=", 2);
  buf[ISCSI_KEY_VALUE_MAX + 3] = '\0';
  ck_assert_int_eq(iscsi_keys_parse(buf, ISCSI_KEY_VALUE_MAX + 4, kv, 2), -22);
  memcpy(buf, "A=1\0B=2\0C=3", 12);
  ck_assert_int_eq(iscsi_keys_parse(buf, 12, kv, 2), -7 /* E2BIG */);
  free(buf);
}
END_TEST

/* Text requests in full feature phase: what each gets.  Pairs are written
 * with '|' for NUL; answers likewise, "REJECT" for a Reject PDU.  The stub
 * SendTargets handler answers "T=<value>" so the answer shows what it got. */
static const struct {
  const char *request, *answer;
} ffp_rows[] = {
  { "SendTargets=All", "T=All" },                          /* discovery */
  { "SendTargets=", "T=" },                                /* the session's own target */
  { "SendTargets=iqn.2025-10.org.lungate:demo", "T=iqn.2025-10.org.lungate:demo" },
  { "SendTargets=IQN.2025-10.ORG.LUNGATE:DEMO", "T=IQN.2025-10.ORG.LUNGATE:DEMO" }, /* names: any case */
  { "SendTargets=eui.0123456789ABCDEF", "T=eui.0123456789ABCDEF" },
  { "SendTargets=naa.52004567BA64678D", "T=naa.52004567BA64678D" },
  { "", "" },                                              /* nothing asked: empty answer */
  /* an unknown key next to a valid SendTargets: NotUnderstood, in its place */
  { "X-org.example.Hint=1|SendTargets=All", "X-org.example.Hint=NotUnderstood|T=All" },
  { "SendTargets=All|sendtargets=All", "T=All|sendtargets=NotUnderstood" },
  { "SendTargets=All|MaxRecvDataSegmentLength=65536", "T=All|MaxRecvDataSegmentLength=NotUnderstood" },
  /* libiscsi 1.20 iSCSISendTargets.Invalid: unknown, misspelt, wrongly cased, bad values */
  { "SendTargetsPlease=All", "REJECT" },                   /* unknown key */
  { "SendTarget=All", "REJECT" },                          /* misspelt */
  { "SendTargetsAll", "REJECT" },                          /* no '=': malformed */
  { "sENDtARGETS=aLL", "REJECT" },                         /* keys are case-sensitive */
  { "sendtargets=All", "REJECT" },
  { "SendTargets=Alle", "REJECT" },                        /* bad values */
  { "SendTargets=A", "REJECT" },
  { "SendTargets=all", "REJECT" },                         /* All is a literal */
  { "SendTargets=ALL", "REJECT" },
  { "SendTargets=iqn.", "REJECT" },                        /* a prefix is no name */
  { "SendTargets=All|SendTargets=All", "REJECT" },         /* a key twice */
  { "SendTargets=All|SendTargets=Alle", "REJECT" },
  { "SendTargets=Alle|X-org.example.Hint=1", "REJECT" },
  { "MaxRecvDataSegmentLength=65536", "REJECT" },          /* no operation lungate does */
};

static void stub_targets(void *arg, const char *which, struct iscsi_text *resp)
{
  ++*(int *)arg;
  iscsi_text_add(resp, "T", which);
}

START_TEST(test_text_ffp)
{
  char buf[256], want[256];
  const char *req = ffp_rows[_i].request;
  size_t len = strlen(req);
  memcpy(buf, req, len + 1);
  for (size_t k = 0; k < len; k++)
    if (buf[k] == '|')
      buf[k] = '\0';
  struct iscsi_kv kv[8];
  int n = len ? iscsi_keys_parse(buf, len + 1, kv, 8) : 0;
  int calls = 0;
  struct iscsi_text resp = { 0 };
  if (n >= 0)
    n = iscsi_text_ffp(kv, n, &resp, stub_targets, &calls);
  if (!strcmp(ffp_rows[_i].answer, "REJECT")) {
    ck_assert_msg(n == -EPROTO || n == -EINVAL, "row %d \"%s\": answered (%d), want a Reject",
                  _i, req, n);
    ck_assert_msg(calls == 0, "row %d \"%s\": SendTargets ran before the Reject", _i, req);
  } else {
    ck_assert_msg(n == 0, "row %d \"%s\": %d, want an answer", _i, req, n);
    size_t wl = strlen(ffp_rows[_i].answer);
    memcpy(want, ffp_rows[_i].answer, wl + 1);
    for (size_t k = 0; k < wl; k++)
      if (want[k] == '|')
        want[k] = '\0';
    ck_assert_msg(resp.len == (wl ? wl + 1 : 0) && (!wl || !memcmp(resp.buf, want, wl + 1)),
                  "row %d \"%s\": answer of %zu bytes, want \"%s\"", _i, req, resp.len,
                  ffp_rows[_i].answer);
  }
  iscsi_text_free(&resp);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("keys");
  TCase *tc = tcase_create("keys");
  tcase_add_loop_test(tc, test_negotiate, 0, sizeof neg_rows / sizeof neg_rows[0]);
  tcase_add_test(tc, test_negotiate_effects);
  tcase_add_loop_test(tc, test_parse, 0, sizeof parse_rows / sizeof parse_rows[0]);
  tcase_add_test(tc, test_parse_limits);
  tcase_add_loop_test(tc, test_text_ffp, 0, sizeof ffp_rows / sizeof ffp_rows[0]);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
