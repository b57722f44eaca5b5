/* Text key parsing and operational key negotiation (table-driven). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iscsi/keys.h"

int iscsi_keys_parse(char *text, size_t len, struct iscsi_kv *kv, size_t max)
{
  size_t n = 0, i = 0;
  while (i < len) {
    char *start = text + i;
    size_t rem = len - i;
    char *end = memchr(start, '\0', rem);
    size_t plen = end ? (size_t)(end - start) : rem;
    if (!end) /* the last pair lacks its NUL: only valid if there is room */
      return -EINVAL;
    i += plen + 1;
    if (plen == 0)  /* padding NULs */
      continue;
    char *eq = memchr(start, '=', plen);
    if (!eq || eq == start || (size_t)(eq - start) > ISCSI_KEY_NAME_MAX ||
        plen - (size_t)(eq - start) - 1 > ISCSI_KEY_VALUE_MAX)
      return -EINVAL;
    if (n == max)
      return -E2BIG;
    *eq = '\0';
    kv[n].key = start;
    kv[n].value = eq + 1;
    n++;
  }
  return (int)n;
}

void iscsi_params_init(struct iscsi_params *p, const struct lg_params *offer)
{
  *p = (struct iscsi_params){
    .header_digest = false,
    .data_digest = false,
    .initial_r2t = true,
    .immediate_data = true,
    .max_recv_dsl_target = offer->max_recv_data_segment_length,
    .max_recv_dsl_initiator = 8192,
    .max_burst_length = 262144,
    .first_burst_length = 65536,
    .max_outstanding_r2t = 1,
    .default_time2wait = 2,
    .default_time2retain = 20,
    .max_connections = 1,
    .error_recovery_level = 0,
    .data_pdu_in_order = true,
    .data_sequence_in_order = true,
  };
}

int iscsi_text_add(struct iscsi_text *t, const char *key, const char *value)
{
  size_t need = strlen(key) + 1 + strlen(value) + 1;
  if (t->len + need > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 512;
    while (cap < t->len + need)
      cap *= 2;
    char *nb = realloc(t->buf, cap);
    if (!nb)
      return -ENOMEM;
    t->buf = nb;
    t->cap = cap;
  }
  t->len += (size_t)sprintf(t->buf + t->len, "%s=%s", key, value) + 1;
  return 0;
}

void iscsi_text_free(struct iscsi_text *t)
{
  free(t->buf);
  *t = (struct iscsi_text){ 0 };
}

bool iscsi_send_targets_value_ok(const char *v)
{
  if (!*v || !strcmp(v, "All"))
    return true;
  /* an iSCSI name (RFC 3720 §3.2.6.3; names compare case-insensitively) */
  size_t len = strlen(v);
  return len > 4 && len <= 223 &&
         (!strncasecmp(v, "iqn.", 4) || !strncasecmp(v, "eui.", 4) || !strncasecmp(v, "naa.", 4));
}

int iscsi_text_ffp(const struct iscsi_kv *kv, int n, struct iscsi_text *resp,
                   iscsi_send_targets_fn *send_targets, void *arg)
{
  int st = 0;
  for (int i = 0; i < n; i++)
    if (!strcmp(kv[i].key, "SendTargets")) {
      if (st++ || !iscsi_send_targets_value_ok(kv[i].value))
        return -EPROTO;              /* repeated, or a value it cannot mean */
    }
  if (n > 0 && !st)
    return -EPROTO;                  /* nothing asked that lungate does */
  for (int i = 0; i < n; i++) {
    if (!strcmp(kv[i].key, "SendTargets"))
      send_targets(arg, kv[i].value, resp);
    else if (iscsi_text_add(resp, kv[i].key, "NotUnderstood") < 0)
      return -ENOMEM;
  }
  return 0;
}

/* Numbers: decimal, or hex with 0x (§6.1 numerical values). */
static int parse_num(const char *s, uint32_t *out)
{
  if (!*s || *s == '-' || *s == '+' || *s == ' ')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10);
  if (*end || errno || v > 0xffffffffull)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int parse_bool(const char *s, bool *out)
{
  if (!strcmp(s, "Yes")) { *out = true; return 0; }
  if (!strcmp(s, "No")) { *out = false; return 0; }
  return -1;
}

enum key_kind {
  K_BOOL_AND,      /* result Yes only if both say Yes */
  K_BOOL_OR,       /* result Yes if either says Yes */
  K_NUM_MIN,       /* result is the smaller */
  K_NUM_MAX,       /* result is the larger */
  K_DECLARE_MRDSL, /* the initiator declares what it receives */
  K_DIGEST,        /* list: first of theirs that we support */
  K_IRRELEVANT,    /* obsolete keys (markers): answered Irrelevant */
};

struct key_def {
  const char *name;
  enum key_kind kind;
  uint32_t min, max;                 /* valid range of numeric values */
  size_t param_off;                  /* field in iscsi_params */
  int offer_off;                     /* field in lg_params, -1: fixed offer */
  uint32_t fixed_offer;              /* used when offer_off < 0 */
};

#define PO(f) offsetof(struct iscsi_params, f)
#define OO(f) (int)offsetof(struct lg_params, f)

static const struct key_def key_table[] = {
  { "HeaderDigest", K_DIGEST, 0, 0, PO(header_digest), OO(header_digest_crc32c), 0 },
  { "DataDigest", K_DIGEST, 0, 0, PO(data_digest), OO(data_digest_crc32c), 0 },
  { "MaxConnections", K_NUM_MIN, 1, 65535, PO(max_connections), -1, 1 },
  { "InitialR2T", K_BOOL_OR, 0, 0, PO(initial_r2t), OO(initial_r2t), 0 },
  { "ImmediateData", K_BOOL_AND, 0, 0, PO(immediate_data), OO(immediate_data), 0 },
  { "MaxRecvDataSegmentLength", K_DECLARE_MRDSL, 512, 16777215, PO(max_recv_dsl_initiator), -1, 0 },
  { "MaxBurstLength", K_NUM_MIN, 512, 16777215, PO(max_burst_length), OO(max_burst_length), 0 },
  { "FirstBurstLength", K_NUM_MIN, 512, 16777215, PO(first_burst_length), OO(first_burst_length), 0 },
  { "DefaultTime2Wait", K_NUM_MAX, 0, 3600, PO(default_time2wait), OO(default_time2wait), 0 },
  { "DefaultTime2Retain", K_NUM_MIN, 0, 3600, PO(default_time2retain), OO(default_time2retain), 0 },
  { "MaxOutstandingR2T", K_NUM_MIN, 1, 65535, PO(max_outstanding_r2t), OO(max_outstanding_r2t), 0 },
  { "DataPDUInOrder", K_BOOL_OR, 0, 0, PO(data_pdu_in_order), -1, 1 },
  { "DataSequenceInOrder", K_BOOL_OR, 0, 0, PO(data_sequence_in_order), -1, 1 },
  { "ErrorRecoveryLevel", K_NUM_MIN, 0, 2, PO(error_recovery_level), -1, 0 },
  { "IFMarker", K_BOOL_AND, 0, 0, 0, -2, 0 },
  { "OFMarker", K_BOOL_AND, 0, 0, 0, -2, 0 },
  { "IFMarkInt", K_IRRELEVANT, 0, 0, 0, -1, 0 },
  { "OFMarkInt", K_IRRELEVANT, 0, 0, 0, -1, 0 },
};

static uint32_t offer_num(const struct key_def *d, const struct lg_params *offer)
{
  return d->offer_off < 0 ? d->fixed_offer : *(const uint32_t *)((const char *)offer + d->offer_off);
}

static bool offer_bool(const struct key_def *d, const struct lg_params *offer)
{
  return d->offer_off < 0 ? d->fixed_offer != 0 : *(const bool *)((const char *)offer + d->offer_off);
}

enum iscsi_key_result iscsi_negotiate_key(struct iscsi_params *p,
                                          const struct lg_params *offer,
                                          const char *key, const char *value,
                                          struct iscsi_text *resp)
{
  const struct key_def *d = NULL;
  for (size_t i = 0; i < sizeof key_table / sizeof key_table[0]; i++)
    if (!strcmp(key_table[i].name, key))
      d = &key_table[i];
  if (!d)
    return KEY_NOT_OPERATIONAL;
  char buf[16];
  bool b;
  uint32_t n;
  void *field = (char *)p + d->param_off;

  switch (d->kind) {
  case K_BOOL_AND:
  case K_BOOL_OR:
    if (parse_bool(value, &b) < 0)
      goto reject;
    if (d->offer_off == -2) { /* markers: never */
      iscsi_text_add(resp, key, "No");
      return KEY_OK;
    }
    b = d->kind == K_BOOL_AND ? (b && offer_bool(d, offer)) : (b || offer_bool(d, offer));
    *(bool *)field = b;
    iscsi_text_add(resp, key, b ? "Yes" : "No");
    return KEY_OK;
  case K_NUM_MIN:
  case K_NUM_MAX:
    if (parse_num(value, &n) < 0 || n < d->min || n > d->max)
      goto reject;
    {
      uint32_t ours = offer_num(d, offer);
      n = d->kind == K_NUM_MIN ? (n < ours ? n : ours) : (n > ours ? n : ours);
    }
    *(uint32_t *)field = n;
    snprintf(buf, sizeof buf, "%u", n);
    iscsi_text_add(resp, key, buf);
    return KEY_OK;
  case K_DECLARE_MRDSL:
    if (parse_num(value, &n) < 0 || n < d->min || n > d->max)
      goto reject;
    *(uint32_t *)field = n;
    return KEY_OK; /* declarative: our own value is declared separately */
  case K_DIGEST: {
    /* list of values in the initiator's order of preference */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", value);
    bool allow_crc = offer_bool(d, offer);
    for (char *save, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (!strcmp(tok, "None")) {
        *(bool *)field = false;
        iscsi_text_add(resp, key, "None");
        return KEY_OK;
      }
      if (!strcmp(tok, "CRC32C") && allow_crc) {
        *(bool *)field = true;
        iscsi_text_add(resp, key, "CRC32C");
        return KEY_OK;
      }
    }
    goto reject;
  }
  case K_IRRELEVANT:
    iscsi_text_add(resp, key, "Irrelevant");
    return KEY_IRRELEVANT;
  }
reject:
  iscsi_text_add(resp, key, "Reject");
  return KEY_REJECT;
}
