/* CRC32C as iSCSI header and data digests compute it (iscsi_crc32c, ISA-L),
 * against the published vectors of RFC 3720 appendix B.4 (RFC 7143 keeps
 * them): each row gives the data, the CRC value and the four digest bytes in
 * the order they travel on the wire.  Every row is also computed in pieces of
 * every split, as the receive path does for data arriving in fragments. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "iscsi/pdu.h"
#include "run_suite.h"

/* An iSCSI SCSI Read (10) Command PDU, RFC 3720 B.4. */
static const uint8_t read10_pdu[48] = {
  0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
  0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

enum fill { ZEROS, ONES, INCREASING, DECREASING, READ10_PDU, CHECK_STRING };

static const struct {
  const char *name;
  enum fill fill;
  size_t len;
  uint32_t crc;                      /* the CRC32C value */
  uint8_t wire[4];                   /* the digest's bytes as sent */
} rows[] = {
  { "32 bytes of zeros", ZEROS, 32, 0x8a9136aa, { 0xaa, 0x36, 0x91, 0x8a } },
  { "32 bytes of 0xff", ONES, 32, 0x62a8ab43, { 0x43, 0xab, 0xa8, 0x62 } },
  { "32 increasing bytes 00..1f", INCREASING, 32, 0x46dd794e, { 0x4e, 0x79, 0xdd, 0x46 } },
  { "32 decreasing bytes 1f..00", DECREASING, 32, 0x113fdb5c, { 0x5c, 0xdb, 0x3f, 0x11 } },
  { "SCSI Read (10) command PDU", READ10_PDU, 48, 0xd9963a56, { 0x56, 0x3a, 0x96, 0xd9 } },
  { "\"123456789\" (the CRC catalogue's check value)", CHECK_STRING, 9, 0xe3069283,
    { 0x83, 0x92, 0x06, 0xe3 } },
};

static void fill(uint8_t *buf, int row)
{
  for (size_t i = 0; i < rows[row].len; i++) {
    switch (rows[row].fill) {
    case ZEROS: buf[i] = 0x00; break;
    case ONES: buf[i] = 0xff; break;
    case INCREASING: buf[i] = (uint8_t)i; break;
    case DECREASING: buf[i] = (uint8_t)(rows[row].len - 1 - i); break;
    case READ10_PDU: buf[i] = read10_pdu[i]; break;
    case CHECK_STRING: buf[i] = (uint8_t)('1' + i); break;
    }
  }
}

START_TEST(test_vectors)
{
  uint8_t buf[64];
  fill(buf, _i);
  uint32_t crc = iscsi_crc32c_final(iscsi_crc32c(buf, rows[_i].len, ISCSI_CRC32C_INIT));
  ck_assert_msg(crc == rows[_i].crc, "row %d (%s): CRC32C 0x%08x, want 0x%08x", _i,
                rows[_i].name, crc, rows[_i].crc);
  /* conn.c sends the value as it lies in memory: check the bytes on the wire */
  uint8_t wire[4];
  memcpy(wire, &crc, 4);
  ck_assert_msg(!memcmp(wire, rows[_i].wire, 4),
                "row %d (%s): digest bytes %02x %02x %02x %02x, want %02x %02x %02x %02x",
                _i, rows[_i].name, wire[0], wire[1], wire[2], wire[3], rows[_i].wire[0],
                rows[_i].wire[1], rows[_i].wire[2], rows[_i].wire[3]);
}
END_TEST

START_TEST(test_pieces)
{
  uint8_t buf[64];
  fill(buf, _i);
  size_t len = rows[_i].len;
  for (size_t a = 0; a <= len; a++)
    for (size_t b = a; b <= len; b++) {
      uint32_t crc = iscsi_crc32c(buf, a, ISCSI_CRC32C_INIT);
      crc = iscsi_crc32c(buf + a, b - a, crc);
      crc = iscsi_crc32c_final(iscsi_crc32c(buf + b, len - b, crc));
      ck_assert_msg(crc == rows[_i].crc, "row %d (%s) split at %zu and %zu: 0x%08x", _i,
                    rows[_i].name, a, b, crc);
    }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("digest");
  TCase *tc = tcase_create("crc32c");
  tcase_add_loop_test(tc, test_vectors, 0, sizeof rows / sizeof rows[0]);
  tcase_add_loop_test(tc, test_pieces, 0, sizeof rows / sizeof rows[0]);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
