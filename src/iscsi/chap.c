/* CHAP: challenges from getrandom(2), digests and constant-time comparison
 * from nettle. */
#include <errno.h>
#include <nettle/base64.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "iscsi/chap.h"

#define CHAP_VALUE_MAX 1024              /* bytes of a decoded challenge/response */

static int hexval(char ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int chap_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    size_t n = strlen(s);
    if (n == 0 || n / 2 + n % 2 > max)
      return -1;
    size_t o = 0;
    if (n % 2) { /* an odd digit count: the first nibble stands alone */
      int v = hexval(*s++);
      if (v < 0)
        return -1;
      out[o++] = (uint8_t)v;
    }
    for (; *s; s += 2) {
      int hi = hexval(s[0]), lo = hexval(s[1]);
      if (hi < 0 || lo < 0)
        return -1;
      out[o++] = (uint8_t)(hi << 4 | lo);
    }
    *len = o;
    return 0;
  }
  if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
    s += 2;
    size_t n = strlen(s);
    if (n == 0 || BASE64_DECODE_LENGTH(n) > max)
      return -1;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    size_t o = max;
    if (!base64_decode_update(&ctx, &o, out, n, s) || !base64_decode_final(&ctx))
      return -1;
    *len = o;
    return 0;
  }
  return -1;
}

size_t chap_digest(int alg, uint8_t id, const char *secret, const uint8_t *challenge,
                   size_t clen, uint8_t *out)
{
  if (alg == 7) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, 1, &id);
    sha256_update(&ctx, strlen(secret), (const uint8_t *)secret);
    sha256_update(&ctx, clen, challenge);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    return SHA256_DIGEST_SIZE;
  }
  struct md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, 1, &id);
  md5_update(&ctx, strlen(secret), (const uint8_t *)secret);
  md5_update(&ctx, clen, challenge);
  md5_digest(&ctx, MD5_DIGEST_SIZE, out);
  return MD5_DIGEST_SIZE;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
  static const char d[] = "0123456789abcdef";
  *out++ = '0';
  *out++ = 'x';
  for (size_t i = 0; i < n; i++) {
    *out++ = d[p[i] >> 4];
    *out++ = d[p[i] & 15];
  }
  *out = '\0';
}

/* The algorithm: the first of the initiator's list that we speak. */
static int pick_alg(const char *list)
{
  char tmp[128];
  snprintf(tmp, sizeof tmp, "%s", list);
  for (char *save, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    if (!strcmp(tok, "5") || !strcmp(tok, "7"))
      return tok[0] - '0';
  return -1;
}

int iscsi_chap_step(struct iscsi_chap *ch, const struct chap_keys *k,
                    struct iscsi_text *resp, const char **why)
{
  char buf[2 * CHAP_MAX_DIGEST + 3];
  switch (ch->state) {
  case CHAP_WAIT_A:
    if (!k->a)
      return 0; /* not yet */
    ch->alg = pick_alg(k->a);
    if (ch->alg < 0) {
      iscsi_text_add(resp, "CHAP_A", "Reject");
      *why = "no CHAP algorithm in common (lungate offers MD5=5 and SHA-256=7)";
      return -1;
    }
    ch->challenge_len = ch->alg == 7 ? 32 : 16;
    if (getrandom(&ch->id, 1, 0) != 1 ||
        getrandom(ch->challenge, ch->challenge_len, 0) != (ssize_t)ch->challenge_len) {
      *why = "no random numbers for the challenge";
      return -1;
    }
    snprintf(buf, sizeof buf, "%d", ch->alg);
    iscsi_text_add(resp, "CHAP_A", buf);
    snprintf(buf, sizeof buf, "%u", ch->id);
    iscsi_text_add(resp, "CHAP_I", buf);
    hex(ch->challenge, ch->challenge_len, buf);
    iscsi_text_add(resp, "CHAP_C", buf);
    ch->state = CHAP_WAIT_R;
    return 0;
  case CHAP_WAIT_R: {
    if (!k->n || !k->r) {
      *why = "CHAP_N and CHAP_R expected after our challenge";
      return -1;
    }
    uint8_t got[CHAP_VALUE_MAX], want[CHAP_MAX_DIGEST];
    size_t glen;
    size_t wlen = chap_digest(ch->alg, ch->id, ch->cred->password, ch->challenge,
                              ch->challenge_len, want);
    bool name_ok = strlen(k->n) == strlen(ch->cred->userid) &&
                   memeql_sec(k->n, ch->cred->userid, strlen(k->n));
    bool resp_ok = chap_decode(k->r, got, sizeof got, &glen) == 0 && glen == wlen &&
                   memeql_sec(got, want, wlen);
    explicit_bzero(want, sizeof want);
    if (!name_ok || !resp_ok) {
      *why = "CHAP name or response does not match the configured credentials";
      return -1;
    }
    if (k->i || k->c) { /* mutual: now we prove ourselves */
      uint8_t ichal[CHAP_VALUE_MAX];
      size_t ilen;
      char *end;
      unsigned long iid = k->i ? strtoul(k->i, &end, 0) : 256;
      if (!k->i || !k->c || *end || iid > 255 ||
          chap_decode(k->c, ichal, sizeof ichal, &ilen) < 0 || ilen == 0) {
        *why = "malformed mutual CHAP challenge";
        return -1;
      }
      if (!ch->cred->mutual_userid) {
        *why = "the initiator asks for mutual CHAP, which is not configured for it";
        return -1;
      }
      if (ilen == ch->challenge_len && !memcmp(ichal, ch->challenge, ilen)) {
        *why = "the initiator sent our own challenge back (reflection)";
        return -1;
      }
      uint8_t d[CHAP_MAX_DIGEST];
      size_t dl = chap_digest(ch->alg, (uint8_t)iid, ch->cred->mutual_password, ichal, ilen, d);
      hex(d, dl, buf);
      iscsi_text_add(resp, "CHAP_N", ch->cred->mutual_userid);
      iscsi_text_add(resp, "CHAP_R", buf);
      ch->mutual = true;
    } /* mutual CHAP is the initiator's choice: without CHAP_I/CHAP_C it is one-way */
    ch->state = CHAP_DONE;
    return 0;
  }
  case CHAP_DONE:
    return 0;
  }
  return -1;
}
