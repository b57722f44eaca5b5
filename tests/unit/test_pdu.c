/* PDU field encoding and the receive state machine: a login, NOP pings, a
 * Reject and an oversized data segment, fed in fragments of many sizes
 * through a socketpair; every reply is read back and decoded. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi/iscsi.h"
#include "run_suite.h"

static const struct { uint8_t lun[8]; bool ok; uint64_t value; } lun_rows[] = {
  { { 0, 0 }, true, 0 },
  { { 0, 5 }, true, 5 },
  { { 0, 255 }, true, 255 },
  { { 0x41, 0x2c }, true, 300 },                      /* flat space */
  { { 0x01, 0x00 }, false, 0 },                      /* peripheral, bus 1 */
  { { 0x80, 0x01 }, false, 0 },                      /* logical unit addressing */
  { { 0, 1, 0, 0, 0, 0, 0, 1 }, false, 0 },          /* second level */
};

START_TEST(test_lun)
{
  uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
  memcpy(bhs + BHS_LUN, lun_rows[_i].lun, 8);
  uint64_t v = 99;
  bool ok = iscsi_lun_decode(bhs, &v);
  ck_assert_msg(ok == lun_rows[_i].ok, "row %d: decode %d", _i, ok);
  if (ok) {
    ck_assert_msg(v == lun_rows[_i].value, "row %d: lun %llu", _i, (unsigned long long)v);
    uint8_t enc[ISCSI_BHS_LEN] = { 0 };
    iscsi_lun_encode(enc, v);
    ck_assert_msg(!memcmp(enc + BHS_LUN, lun_rows[_i].lun, 8), "row %d: encode", _i);
  }
}
END_TEST

START_TEST(test_fields)
{
  uint8_t b[ISCSI_BHS_LEN] = { 0 };
  bhs_set_data_len(b, 0x123456);
  ck_assert_uint_eq(bhs_data_len(b), 0x123456);
  b[4] = 3;
  ck_assert_uint_eq(bhs_ahs_len(b), 12);
  bhs_put32(b, 16, 0xdeadbeef);
  ck_assert_uint_eq(bhs_itt(b), 0xdeadbeef);
  ck_assert(sn_lt(0xffffffffu, 0));                   /* serial arithmetic wraps */
  ck_assert(!sn_lt(0, 0xffffffffu));
  ck_assert(sn_le(5, 5));
  /* CRC32C check value */
  ck_assert_uint_eq(iscsi_crc32c_final(iscsi_crc32c("123456789", 9, ISCSI_CRC32C_INIT)),
                    0xe3069283);
}
END_TEST

static char dir[] = "/tmp/lungate-pdu-XXXXXX";
static int peer = -1;
static struct iscsi_conn *conn;
static struct lg_model *model;

static void setup(void)
{
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[128], json[512];
  snprintf(path, sizeof path, "%s/a.img", dir);
  FILE *f = fopen(path, "w");
  ck_assert(f && ftruncate(fileno(f), 1 << 20) == 0);
  fclose(f);
  snprintf(json, sizeof json,
           "{\"storage_objects\":[{\"plugin\":\"fileio\",\"name\":\"a\",\"dev\":\"%s\"}],"
           "\"targets\":[{\"wwn\":\"iqn.2025-10.org.test:t\",\"tpgs\":[{\"tag\":7,"
           "\"attributes\":{\"generate_node_acls\":1},\"luns\":[{\"index\":0,"
           "\"storage_object\":\"/backstores/fileio/a\"}]}]}]}", path);
  json_t *j = json_loads(json, 0, NULL);
  char *err = NULL;
  model = lg_model_load(j, NULL, &err);
  ck_assert_msg(model, "%s", err);
  json_decref(j);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  peer = sv[1];
  conn = iscsi_conn_new(sv[0], model);
  ck_assert_ptr_nonnull(conn);
}

static void teardown(void)
{
  iscsi_conn_free(conn);
  lg_model_unref(model);
  close(peer);
  char path[128];
  snprintf(path, sizeof path, "%s/a.img", dir);
  unlink(path);
  rmdir(dir);
  strcpy(dir, "/tmp/lungate-pdu-XXXXXX");
}

/* Feed a PDU in pieces of `step` bytes; returns the feed result. */
static int feed(const uint8_t *bhs, const void *data, uint32_t len, size_t step)
{
  uint8_t buf[ISCSI_BHS_LEN + 70000];
  memcpy(buf, bhs, ISCSI_BHS_LEN);
  bhs_set_data_len(buf, len);
  uint32_t padded = (len + 3) & ~3u;
  memset(buf + ISCSI_BHS_LEN, 0, padded);
  if (data)
    memcpy(buf + ISCSI_BHS_LEN, data, len);
  size_t total = ISCSI_BHS_LEN + padded;
  for (size_t off = 0; off < total; off += step) {
    size_t n = total - off < step ? total - off : step;
    if (iscsi_rx_feed(conn, buf + off, n) < 0)
      return -1;
  }
  return 0;
}

/* Read one reply PDU; returns its data length. */
static uint32_t reply(uint8_t *bhs, uint8_t *data, size_t cap)
{
  ck_assert_int_eq(recv(peer, bhs, ISCSI_BHS_LEN, MSG_WAITALL), ISCSI_BHS_LEN);
  uint32_t len = bhs_data_len(bhs), padded = (len + 3) & ~3u;
  ck_assert_uint_le(padded, cap);
  if (padded)
    ck_assert_int_eq(recv(peer, data, padded, MSG_WAITALL), (int)padded);
  return len;
}

static void login(size_t step)
{
  static const char keys[] =
    "InitiatorName=iqn.2025-10.org.test:unit\0SessionType=Normal\0"
    "TargetName=iqn.2025-10.org.test:t\0HeaderDigest=None\0DataDigest=None\0"
    "InitialR2T=Yes\0ImmediateData=No\0MaxRecvDataSegmentLength=8192\0"
    "MaxBurstLength=262144\0FirstBurstLength=65536\0MaxOutstandingR2T=1\0";
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_IMMEDIATE | ISCSI_OP_LOGIN_REQ, 0x80 | 0x04 | 0x03 };
  memcpy(bhs + 8, "\x40\x00\x01\x37\x00\x00", 6);
  bhs_put32(bhs, BHS_ITT, 0x1000);
  bhs_put32(bhs, BHS_CMDSN, 42);
  ck_assert_int_eq(feed(bhs, keys, sizeof keys - 1, step), 0);
  uint8_t r[ISCSI_BHS_LEN], data[4096];
  uint32_t n = reply(r, data, sizeof data);
  ck_assert_uint_eq(r[0], ISCSI_OP_LOGIN_RSP);
  ck_assert_uint_eq(r[1], 0x87);                     /* T, CSG 1, NSG 3 */
  ck_assert_uint_eq(r[36] << 8 | r[37], 0);          /* success */
  ck_assert_uint_ne(bhs_get16(r, 14), 0);            /* TSIH */
  ck_assert_uint_eq(bhs_itt(r), 0x1000);
  ck_assert_uint_eq(bhs_get32(r, BHS_EXPCMDSN), 42);
  ck_assert(sn_lt(42, bhs_get32(r, BHS_MAXCMDSN)));  /* room to pipeline */
  data[n] = '\0';
  bool tpgt = false, imm_no = false;
  for (uint32_t i = 0; i < n; i += (uint32_t)strlen((char *)data + i) + 1) {
    tpgt |= !strcmp((char *)data + i, "TargetPortalGroupTag=7");
    imm_no |= !strcmp((char *)data + i, "ImmediateData=No");
  }
  ck_assert_msg(tpgt && imm_no, "login response keys");
  ck_assert_int_eq(conn->phase, PHASE_FULL_FEATURE);
  ck_assert_uint_eq(conn->params.max_recv_dsl_initiator, 8192);
}

static const size_t steps[] = { 1, 3, 7, 48, 49, 100, 100000 };

START_TEST(test_login_nop_reject)
{
  size_t step = steps[_i];
  login(step);
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT, 0x80 }, r[ISCSI_BHS_LEN], data[70000];

  /* a ping with data is echoed, StatSN advancing */
  bhs_put32(bhs, BHS_ITT, 0x2000);
  bhs_put32(bhs, BHS_TTT, ISCSI_RSVD_TAG);
  bhs_put32(bhs, BHS_CMDSN, 42);
  ck_assert_int_eq(feed(bhs, "hello", 5, step), 0);
  ck_assert_uint_eq(reply(r, data, sizeof data), 5);
  ck_assert_uint_eq(r[0], ISCSI_OP_NOP_IN);
  ck_assert_uint_eq(bhs_itt(r), 0x2000);
  ck_assert(!memcmp(data, "hello", 5));
  ck_assert_uint_eq(bhs_get32(r, BHS_EXPCMDSN), 43);
  uint32_t statsn = bhs_get32(r, BHS_STATSN);

  /* an unknown opcode: Reject carrying the header, and the stream stays in sync */
  uint8_t bad[ISCSI_BHS_LEN] = { 0x1e, 0x80 };
  bhs_put32(bad, BHS_ITT, 0x3000);
  ck_assert_int_eq(feed(bad, "junkjunk!", 9, step), 0);
  ck_assert_uint_eq(reply(r, data, sizeof data), ISCSI_BHS_LEN);
  ck_assert_uint_eq(r[0], ISCSI_OP_REJECT);
  ck_assert_uint_eq(r[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
  ck_assert_uint_eq(data[0], 0x1e);
  ck_assert_uint_eq(bhs_get32(r, BHS_STATSN), statsn + 1);

  /* a data segment above our MaxRecvDataSegmentLength is rejected and skipped */
  bhs_put32(bhs, BHS_ITT, 0x2001);
  bhs_put32(bhs, BHS_CMDSN, 43);
  static uint8_t big[300000];
  ck_assert_int_eq(feed(bhs, big, 65536 + 4, step < 100 ? 4096 : step), 0);
  conn->params.max_recv_dsl_target = 65536;
  ck_assert_int_eq(feed(bhs, big, 65536 + 4, step < 100 ? 4096 : step), 0);
  ck_assert_uint_eq(reply(r, data, sizeof data), 65536 + 4); /* first: still allowed */
  ck_assert_uint_eq(reply(r, data, sizeof data), ISCSI_BHS_LEN);
  ck_assert_uint_eq(r[0], ISCSI_OP_REJECT);
  ck_assert_uint_eq(r[2], ISCSI_REJECT_PROTOCOL_ERROR);

  /* and the next ping still works */
  bhs_put32(bhs, BHS_ITT, 0x2002);
  bhs_put32(bhs, BHS_CMDSN, 44);
  ck_assert_int_eq(feed(bhs, "again", 5, step), 0);
  ck_assert_uint_eq(reply(r, data, sizeof data), 5);
  ck_assert_uint_eq(bhs_itt(r), 0x2002);
}
END_TEST

START_TEST(test_login_failures)
{
  /* no TargetName in a Normal session: missing parameter, connection ends */
  static const char keys[] = "InitiatorName=iqn.x:y\0SessionType=Normal\0";
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_IMMEDIATE | ISCSI_OP_LOGIN_REQ, 0x80 | 0x01 };
  ck_assert_int_eq(feed(bhs, keys, sizeof keys - 1, 5), -1);
  uint8_t r[ISCSI_BHS_LEN], data[1024];
  reply(r, data, sizeof data);
  ck_assert_uint_eq(r[36] << 8 | r[37], ISCSI_LOGIN_MISSING_PARAMETER);
}
END_TEST

START_TEST(test_pdu_before_login)
{
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_CMD, 0x80 };
  ck_assert_int_eq(feed(bhs, NULL, 0, 48), -1);
}
END_TEST

/* A NOP-Out with CRC32C header and data digests (as negotiated after login). */
static size_t nop_with_digests(uint8_t *out, uint32_t itt, uint32_t cmdsn, bool bad_data)
{
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT, 0x80 };
  bhs_put32(bhs, BHS_ITT, itt);
  bhs_put32(bhs, BHS_TTT, ISCSI_RSVD_TAG);
  bhs_put32(bhs, BHS_CMDSN, cmdsn);
  bhs_set_data_len(bhs, 5);
  memcpy(out, bhs, ISCSI_BHS_LEN);
  uint32_t hd = iscsi_crc32c_final(iscsi_crc32c(bhs, ISCSI_BHS_LEN, ISCSI_CRC32C_INIT));
  memcpy(out + 48, &hd, 4);                 /* the digest goes out least significant byte first */
  memcpy(out + 52, "ping\x21\0\0\0", 8);  /* 5 bytes and padding */
  uint32_t dd = iscsi_crc32c_final(iscsi_crc32c(out + 52, 8, ISCSI_CRC32C_INIT));
  if (bad_data)
    dd ^= 1;
  memcpy(out + 60, &dd, 4);
  return 64;
}

START_TEST(test_digests)
{
  login(100000);
  conn->params.header_digest = conn->params.data_digest = true;
  uint8_t pdu[64], r[ISCSI_BHS_LEN + 4], data[64];
  size_t n = nop_with_digests(pdu, 0x77, 42, false);
  for (size_t off = 0; off < n; off += 3) /* in pieces, across every part */
    ck_assert_int_eq(iscsi_rx_feed(conn, pdu + off, n - off < 3 ? n - off : 3), 0);
  /* the reply carries digests too: BHS, header digest, data, padding, data digest */
  ck_assert_int_eq(recv(peer, r, ISCSI_BHS_LEN + 4, MSG_WAITALL), ISCSI_BHS_LEN + 4);
  ck_assert_uint_eq(r[0], ISCSI_OP_NOP_IN);
  uint32_t hd = iscsi_crc32c_final(iscsi_crc32c(r, ISCSI_BHS_LEN, ISCSI_CRC32C_INIT)), got;
  memcpy(&got, r + ISCSI_BHS_LEN, 4);
  ck_assert_uint_eq(got, hd);
  ck_assert_int_eq(recv(peer, data, 12, MSG_WAITALL), 12);
  ck_assert(!memcmp(data, "ping!", 5));
  uint32_t dd = iscsi_crc32c_final(iscsi_crc32c(data, 8, ISCSI_CRC32C_INIT));
  memcpy(&got, data + 8, 4);
  ck_assert_uint_eq(got, dd);
  /* a data digest error ends the connection (ErrorRecoveryLevel 0) */
  n = nop_with_digests(pdu, 0x78, 43, true);
  ck_assert_int_eq(iscsi_rx_feed(conn, pdu, n), -1);
  /* and so does a header digest error */
  teardown();
  setup();
  login(100000);
  conn->params.header_digest = true;
  uint8_t bhs[ISCSI_BHS_LEN + 4] = { ISCSI_OP_NOP_OUT, 0x80 };
  bhs_put32(bhs, BHS_ITT, 0x79);
  ck_assert_int_eq(iscsi_rx_feed(conn, bhs, sizeof bhs), -1);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("pdu");
  TCase *tc = tcase_create("fields");
  tcase_add_loop_test(tc, test_lun, 0, sizeof lun_rows / sizeof lun_rows[0]);
  tcase_add_test(tc, test_fields);
  suite_add_tcase(s, tc);
  TCase *rx = tcase_create("rx");
  tcase_add_checked_fixture(rx, setup, teardown);
  tcase_add_loop_test(rx, test_login_nop_reject, 0, sizeof steps / sizeof steps[0]);
  tcase_add_test(rx, test_login_failures);
  tcase_add_test(rx, test_pdu_before_login);
  tcase_add_test(rx, test_digests);
  suite_add_tcase(s, rx);
  return lg_run_suite(s);
}
