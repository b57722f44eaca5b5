/* Login (RFC 7143 §6.3, §11.12-13) and Text requests: stages, key negotiation,
 * session creation, SendTargets.
 *
 * Security stage: AuthMethod is answered by login_security(); today it grants
 * "None" when the TPG does not require authentication.  CHAP plugs in there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/cluster.h"
#include "iscsi/iscsi.h"
#include "util/log.h"

#define MAX_KEYS 256
#define ISCSI_NAME_MAX 223

void iscsi_login_free(struct iscsi_conn *c)
{
  free(c->login);
  c->login = NULL;
}

/* Send a Login Response; a non-zero status ends the connection. */
static int login_respond(struct iscsi_conn *c, uint8_t flags, uint16_t status,
                         const struct iscsi_text *text)
{
  struct iscsi_login *L = c->login;
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_LOGIN_RSP, flags, 0x00, 0x00 };
  memcpy(bhs + 8, L->isid, 6);
  bhs_put16(bhs, 14, L->tsih);
  bhs_put32(bhs, BHS_ITT, L->itt);
  bhs[36] = (uint8_t)(status >> 8);
  bhs[37] = (uint8_t)status;
  /* Digests start after the Login Response that ends the login: none on any
   * login PDU, although the keys already hold what was negotiated. */
  bool hd = c->params.header_digest, dd = c->params.data_digest;
  c->params.header_digest = c->params.data_digest = false;
  int r = iscsi_send(c, bhs, text ? text->buf : NULL, text ? (uint32_t)text->len : 0, SN_STAT);
  c->params.header_digest = hd;
  c->params.data_digest = dd;
  if (status != ISCSI_LOGIN_SUCCESS) {
    if (status >> 8 != 1) /* a redirect is no failure */
      lg_stats_login(false);
    c->phase = PHASE_CLOSING;
    return -1;
  }
  return r;
}

static int login_fail(struct iscsi_conn *c, uint16_t status, const char *why)
{
  const char *ini = c->sess && c->sess->initiator_log ? c->sess->initiator_log : "?";
  lg_kv(LG_WARN, "login refused", "initiator=%s peer=%s status=0x%04x reason=%s", ini,
        c->peer, status, LG_Q(why));
  return login_respond(c, 0, status, NULL);
}

static const char *kv_find(const struct iscsi_kv *kv, int n, const char *key)
{
  for (int i = 0; i < n; i++)
    if (!strcmp(kv[i].key, key))
      return kv[i].value;
  return NULL;
}

/* In a cluster, a Normal session whose home is another gateway is sent
 * there (status 0x0101): true when the redirect went out (or failed to), and
 * the login ends.  Asked at the first PDU and again just before the session
 * starts: a login that began before this gateway started draining (or
 * leaving) may take seconds (its RBD clone still closing elsewhere), and a
 * drain has by then asked every session it saw to log out. */
static bool login_redirect(struct iscsi_conn *c, unsigned csg)
{
  struct iscsi_session *s = c->sess;
  char home[LG_CLUSTER_ADDR_MAX];
  if (s->discovery || lg_cluster_home(s->initiator, home, sizeof home) <= 0)
    return false;
  char addr[LG_CLUSTER_ADDR_MAX + 8];
  snprintf(addr, sizeof addr, "%s,%u", home, s->tpg->tag); /* always with its port */
  struct iscsi_text resp = { 0 };
  iscsi_text_add(&resp, "TargetAddress", addr);
  lg_kv(LG_INFO, "login redirected", "initiator=%s peer=%s target=%s to=%s",
        s->initiator_log, c->peer, LG_Q(s->target->iqn), addr);
  login_respond(c, (uint8_t)(csg << 2), ISCSI_LOGIN_TARGET_MOVED_TEMP, &resp);
  iscsi_text_free(&resp);
  return true;
}

/* The first login PDU names the initiator, the session type and the target:
 * look them up and set what the TPG offers. */
static int login_first(struct iscsi_conn *c, const struct iscsi_kv *kv, int n)
{
  struct iscsi_session *s = calloc(1, sizeof *s);
  if (!s)
    return login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES, "out of memory");
  c->sess = s;
  s->conn = c;
  memcpy(s->isid, c->login->isid, 6);
  const char *ini = kv_find(kv, n, "InitiatorName");
  const char *type = kv_find(kv, n, "SessionType");
  const char *tgt = kv_find(kv, n, "TargetName");
  const char *alias = kv_find(kv, n, "InitiatorAlias");
  if (!ini || !*ini)
    return login_fail(c, ISCSI_LOGIN_MISSING_PARAMETER, "no InitiatorName");
  if (strlen(ini) > ISCSI_NAME_MAX)
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "InitiatorName longer than 223 bytes");
  s->initiator = strdup(ini);
  char safe[LG_SAFE_MAX];
  s->initiator_log = strdup(lg_safe(ini, safe, sizeof safe));
  s->alias = alias ? strdup(alias) : NULL;
  if (!s->initiator || !s->initiator_log)
    return login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES, "out of memory");
  if (type && strcmp(type, "Normal") && strcmp(type, "Discovery"))
    return login_fail(c, ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED, "unknown SessionType");
  s->discovery = type && !strcmp(type, "Discovery");
  if (s->discovery)
    return 0;
  if (!tgt)
    return login_fail(c, ISCSI_LOGIN_MISSING_PARAMETER, "no TargetName in a Normal session");
  s->target = lg_model_find_target(c->model, tgt);
  s->tpg = s->target ? lg_target_tpg(s->target) : NULL;
  if (!s->tpg) {
    char tsafe[LG_SAFE_MAX];
    lg_kv(LG_WARN, "login refused", "initiator=%s peer=%s target=%s status=0x%04x "
          "reason=\"no such target\"", s->initiator_log, c->peer,
          lg_safe(tgt, tsafe, sizeof tsafe), ISCSI_LOGIN_NOT_FOUND);
    return login_respond(c, 0, ISCSI_LOGIN_NOT_FOUND, NULL);
  }
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0 ||
      !lg_address_allowed(s->tpg, ini, (struct sockaddr *)&peer)) {
    lg_kv(LG_WARN, "login refused", "initiator=%s peer=%s target=%s status=0x%04x "
          "reason=\"address not in allowed_addresses\"", s->initiator_log, c->peer,
          LG_Q(s->target->iqn), ISCSI_LOGIN_FORBIDDEN);
    return login_respond(c, 0, ISCSI_LOGIN_FORBIDDEN, NULL);
  }
  int nl = lg_tpg_resolve(s->tpg, ini, &s->luns);
  if (nl < 0) {
    lg_kv(LG_WARN, "login refused", "initiator=%s peer=%s target=%s status=0x%04x "
          "reason=\"no ACL admits this initiator and generate_node_acls is off\"",
          s->initiator_log, c->peer, LG_Q(s->target->iqn), ISCSI_LOGIN_FORBIDDEN);
    return login_respond(c, 0, ISCSI_LOGIN_FORBIDDEN, NULL);
  }
  s->n_luns = (size_t)nl;
  if (login_redirect(c, c->login->stage))
    return -1;
  char *why = NULL;
  int r = lg_overlays_acquire(s->luns, s->n_luns, s->target->iqn, ini, s->isid, c->peer_ip,
                              &why);
  if (r < 0) {
    uint16_t status = r == -EBUSY ? ISCSI_LOGIN_FORBIDDEN : ISCSI_LOGIN_TARGET_ERROR;
    lg_kv(LG_WARN, "login refused", "initiator=%s peer=%s target=%s status=0x%04x reason=%s",
          s->initiator_log, c->peer, LG_Q(s->target->iqn), status,
          LG_Q(why ? why : strerror(-r)));
    free(why);
    return login_respond(c, 0, status, NULL);
  }
  s->overlays_held = true;
  s->nexus.luns = s->luns;
  s->nexus.n_luns = s->n_luns;
  c->offer = s->tpg->params;
  if (c->offer.max_outstanding_r2t > ISCSI_MAX_R2T) /* what a task can track */
    c->offer.max_outstanding_r2t = ISCSI_MAX_R2T;
  iscsi_params_init(&c->params, &c->offer);
  return 0;
}

/* What an initiator must prove, and whether it must: the ACL's CHAP
 * credentials, else the TPG's; discovery sessions use fabric_modules'. */
static const struct lg_chap *login_credentials(struct iscsi_conn *c, bool *required)
{
  struct iscsi_session *s = c->sess;
  if (s->discovery) {
    *required = c->model->discovery_auth;
    return c->model->discovery_auth ? &c->model->discovery_chap : NULL;
  }
  *required = s->tpg->authentication;
  const struct lg_acl *acl = lg_tpg_find_acl(s->tpg, s->initiator);
  if (acl && acl->chap.userid)
    return &acl->chap;
  return s->tpg->chap.userid ? &s->tpg->chap : NULL;
}

/* AuthMethod: the first of the initiator's list we accept.  0, or -1 after a
 * failure response. */
static int login_security(struct iscsi_conn *c, const char *auth_method,
                          struct iscsi_text *resp)
{
  struct iscsi_login *L = c->login;
  bool required;
  const struct lg_chap *cred = login_credentials(c, &required);
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s", auth_method);
  for (char *save, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (!strcmp(tok, "CHAP") && cred) {
      iscsi_text_add(resp, "AuthMethod", "CHAP");
      L->auth_chosen = L->use_chap = true;
      L->chap = (struct iscsi_chap){ .state = CHAP_WAIT_A, .cred = cred };
      return 0;
    }
    if (!strcmp(tok, "None") && !required) {
      iscsi_text_add(resp, "AuthMethod", "None");
      L->auth_chosen = L->auth_done = true;
      return 0;
    }
  }
  iscsi_text_add(resp, "AuthMethod", "Reject");
  return login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
                    required && !cred ? "CHAP is required but no credentials are configured "
                                        "for this initiator (chap_userid/chap_password)"
                    : required ? "CHAP is required and the initiator did not offer it"
                               : "the initiator offers no method the target accepts");
}

/* Login complete: apply the negotiated values and enter the full feature phase. */
static int login_complete(struct iscsi_conn *c)
{
  struct iscsi_session *s = c->sess;
  struct iscsi_params *p = &c->params;
  if (p->first_burst_length > p->max_burst_length)
    p->first_burst_length = p->max_burst_length;
  if (iscsi_session_register(s) < 0)
    return login_fail(c, ISCSI_LOGIN_OUT_OF_RESOURCES, "session table full");
  c->login->tsih = s->tsih;
  lg_stats_login(true);
  const struct iscsi_login *L = c->login;
  lg_kv(LG_INFO, "login", "initiator=%s peer=%s %s%s isid=%02x%02x%02x%02x%02x%02x tsih=%u "
        "luns=%zu auth=%s mrdsl=%u/%u burst=%u/%u r2t=%s imm=%s digests=%s/%s",
        s->initiator_log, c->peer, s->discovery ? "session=discovery" : "target=",
        s->discovery ? "" : LG_Q(s->target->iqn), s->isid[0], s->isid[1], s->isid[2],
        s->isid[3], s->isid[4], s->isid[5], s->tsih, s->n_luns,
        !L->use_chap ? "none" : L->chap.alg == 7 ? (L->chap.mutual ? "chap-sha256-mutual"
                                                                   : "chap-sha256")
                              : L->chap.mutual ? "chap-md5-mutual" : "chap-md5",
        p->max_recv_dsl_target, p->max_recv_dsl_initiator, p->first_burst_length,
        p->max_burst_length, p->initial_r2t ? "Yes" : "No",
        p->immediate_data ? "Yes" : "No", p->header_digest ? "CRC32C" : "None",
        p->data_digest ? "CRC32C" : "None");
  return 0;
}

int iscsi_login_pdu(struct iscsi_conn *c, const uint8_t *data, uint32_t len)
{
  struct iscsi_login *L = c->login;
  const uint8_t *bhs = c->rx.bhs;
  uint8_t flags = bhs[1];
  bool transit = flags & ISCSI_FLAG_LOGIN_TRANSIT, cont = flags & ISCSI_FLAG_CONTINUE;
  int csg = (flags >> 2) & 3, nsg = flags & 3;

  if (!L->first_pdu_seen) {
    L->first_pdu_seen = true;
    memcpy(L->isid, bhs + 8, 6);
    L->tsih = bhs_get16(bhs, 14);
    L->cid = bhs_get16(bhs, 20);
    L->stage = csg;
    atomic_store(&c->exp_cmdsn, bhs_get32(bhs, BHS_CMDSN));
    c->max_cmdsn = bhs_get32(bhs, BHS_CMDSN) - 1 + ISCSI_QUEUE_DEPTH; /* the first window */
    c->statsn = bhs_get32(bhs, BHS_EXPSTATSN);
    if (bhs[3] > 0) /* VersionMin: only version 0 exists */
      return login_fail(c, ISCSI_LOGIN_UNSUPPORTED_VERSION, "unsupported iSCSI version");
    if (L->tsih != 0)
      return login_fail(c, ISCSI_LOGIN_SESSION_DOES_NOT_EXIST,
                        "adding connections to a session is not supported (MaxConnections=1)");
  } else if (memcmp(L->isid, bhs + 8, 6)) {
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "ISID changed during login");
  }
  L->itt = bhs_itt(bhs);
  if (++L->pdus > ISCSI_LOGIN_PDUS_MAX)
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "too many login requests");
  if (csg != L->stage && !(csg == 1 && L->stage == 0 && L->security_done))
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "unexpected login stage");
  if (csg == 2 || csg == 3 || (transit && (nsg <= csg || nsg == 2)))
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "invalid stage transition");
  L->stage = csg;

  if (L->text_len + len > sizeof L->text - 1)
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "login keys too long");
  memcpy(L->text + L->text_len, data, len);
  L->text_len += len;
  if (cont) { /* more keys follow in the next PDU: acknowledge with nothing */
    if (transit)
      return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "C and T bits both set");
    return login_respond(c, (uint8_t)(csg << 2), ISCSI_LOGIN_SUCCESS, NULL);
  }

  struct iscsi_kv kv[MAX_KEYS];
  L->text[L->text_len] = '\0';
  int n = iscsi_keys_parse(L->text, L->text_len + (L->text_len && L->text[L->text_len - 1] ? 1 : 0),
                           kv, MAX_KEYS);
  L->text_len = 0;
  if (n < 0)
    return login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "malformed login keys");

  if (!c->sess && login_first(c, kv, n) < 0)
    return -1;
  struct iscsi_session *s = c->sess;
  struct iscsi_text resp = { 0 };
  int rc = 0;
  const char *auth = NULL;
  struct chap_keys ck = { 0 };
  for (int i = 0; i < n; i++) {
    const char *k = kv[i].key, *v = kv[i].value;
    if (!strcmp(k, "InitiatorName") || !strcmp(k, "TargetName") ||
        !strcmp(k, "SessionType") || !strcmp(k, "InitiatorAlias"))
      continue;
    if (!strcmp(k, "AuthMethod")) {
      if (csg != 0)
        iscsi_text_add(&resp, k, "Irrelevant");
      else
        auth = v;
      continue;
    }
    if (!strncmp(k, "CHAP_", 5)) {
      if (csg != 0 || !L->use_chap) {
        rc = login_fail(c, ISCSI_LOGIN_AUTH_FAILED, "CHAP keys without CHAP authentication");
        goto out;
      }
      const char **slot = !strcmp(k, "CHAP_A") ? &ck.a : !strcmp(k, "CHAP_N") ? &ck.n
                        : !strcmp(k, "CHAP_R") ? &ck.r : !strcmp(k, "CHAP_I") ? &ck.i
                        : !strcmp(k, "CHAP_C") ? &ck.c : NULL;
      if (slot)
        *slot = v;
      else
        iscsi_text_add(&resp, k, "NotUnderstood");
      continue;
    }
    if (!strcmp(k, "TargetAlias") || !strcmp(k, "TargetAddress") ||
        !strcmp(k, "TargetPortalGroupTag")) {
      rc = login_fail(c, ISCSI_LOGIN_INITIATOR_ERROR, "initiator sent a target-declared key");
      goto out;
    }
    if (iscsi_negotiate_key(&c->params, &c->offer, k, v, &resp) == KEY_NOT_OPERATIONAL)
      iscsi_text_add(&resp, k, "NotUnderstood");
  }

  if (!s->discovery && !L->tpgt_sent) { /* in the first response of a Normal session */
    char tag[8];
    snprintf(tag, sizeof tag, "%u", s->tpg->tag);
    iscsi_text_add(&resp, "TargetPortalGroupTag", tag);
    L->tpgt_sent = true;
  }
  if (csg == 0) {
    if (auth && !L->auth_chosen && login_security(c, auth, &resp) < 0) {
      rc = -1;
      goto out;
    }
    if (L->use_chap) {
      const char *why = NULL;
      if (iscsi_chap_step(&L->chap, &ck, &resp, &why) < 0) {
        rc = login_fail(c, ISCSI_LOGIN_AUTH_FAILED, why);
        goto out;
      }
      L->auth_done = L->chap.state == CHAP_DONE;
    } else if (!L->auth_chosen) { /* no AuthMethod offered: None, if allowed */
      bool required;
      login_credentials(c, &required);
      L->auth_done = !required;
      if (transit && required) {
        rc = login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
                        "authentication is required; the initiator offered no AuthMethod");
        goto out;
      }
    }
    if (transit && !L->auth_done)
      transit = false; /* CHAP still under way: stay in the security stage */
    L->security_done = transit;
  } else {
    if (!L->security_done) {
      bool required;
      login_credentials(c, &required);
      if (required) {
        rc = login_fail(c, ISCSI_LOGIN_AUTH_FAILED,
                        "authentication is required; the initiator skipped the security stage");
        goto out;
      }
    }
    if (!L->mrdsl_declared) { /* declare what we receive, once */
      char v[16];
      snprintf(v, sizeof v, "%u", c->params.max_recv_dsl_target);
      iscsi_text_add(&resp, "MaxRecvDataSegmentLength", v);
      L->mrdsl_declared = true;
    }
  }

  uint8_t rflags = (uint8_t)(csg << 2);
  if (transit) {
    rflags |= (uint8_t)(ISCSI_FLAG_LOGIN_TRANSIT | nsg);
    L->stage = nsg;
    if (nsg == 3) {
      if (login_redirect(c, csg) || login_complete(c) < 0) {
        rc = -1;
        goto out;
      }
      rc = login_respond(c, rflags, ISCSI_LOGIN_SUCCESS, &resp);
      c->phase = PHASE_FULL_FEATURE;
      atomic_store(&c->logged_in, true);
      goto out;
    }
  }
  rc = login_respond(c, rflags, ISCSI_LOGIN_SUCCESS, &resp);
out:
  iscsi_text_free(&resp);
  return rc;
}

/* "addr:port,tag" of the portal this connection came in on. */
static void local_portal(const struct iscsi_conn *c, uint16_t tag, char *out, size_t len)
{
  char host[INET6_ADDRSTRLEN] = "0.0.0.0";
  unsigned port = 3260;
  const struct sockaddr_storage *ss = &c->local;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    snprintf(out, len, "%s:%u,%u", host, port, tag);
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof host);
      snprintf(out, len, "%s:%u,%u", host, port, tag);
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      snprintf(out, len, "[%s]:%u,%u", host, port, tag);
    }
  }
}

/* SendTargets=All (discovery) or the session's own target. */
static void send_targets(void *arg, const char *which, struct iscsi_text *resp)
{
  struct iscsi_conn *c = arg;
  struct iscsi_session *s = c->sess;
  for (size_t i = 0; i < c->model->n_targets; i++) {
    struct lg_target *t = &c->model->targets[i];
    struct lg_tpg *tpg = lg_target_tpg(t);
    if (!tpg)
      continue;
    if (!s->discovery && t != s->target)
      continue;
    if (strcmp(which, "All") && *which && strcasecmp(which, t->iqn))
      continue;
    struct lg_lun_view *v = NULL;
    int allowed = lg_tpg_resolve(tpg, s->initiator, &v); /* list only what it may log in to */
    free(v);
    if (allowed < 0)
      continue;
    char addr[80];
    if (lg_cluster_entry()) /* clients use the cluster's one address */
      snprintf(addr, sizeof addr, "%s,%u", lg_cluster_entry(), tpg->tag);
    else
      local_portal(c, tpg->tag, addr, sizeof addr);
    iscsi_text_add(resp, "TargetName", t->iqn);
    iscsi_text_add(resp, "TargetAddress", addr);
  }
}

int iscsi_text_pdu(struct iscsi_conn *c, uint8_t *data, uint32_t len)
{
  const uint8_t *bhs = c->rx.bhs;
  uint32_t ttt = bhs_get32(bhs, BHS_TTT);
  uint8_t rsp[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_RSP };
  memcpy(rsp + BHS_LUN, bhs + BHS_LUN, 8);
  bhs_put32(rsp, BHS_ITT, bhs_itt(bhs));

  if (ttt == ISCSI_RSVD_TAG) { /* a new request */
    iscsi_text_free(&c->text_pending);
    c->text_sent = 0;
    if (bhs[1] & ISCSI_FLAG_CONTINUE)
      return iscsi_send_reject(c, ISCSI_REJECT_CMD_NOT_SUPPORTED, bhs);
    char *text = (char *)data; /* the scratch buffer: ours to split in place */
    struct iscsi_kv kv[MAX_KEYS];
    int n = len ? iscsi_keys_parse(text, len, kv, MAX_KEYS) : 0;
    if (n >= 0)
      n = iscsi_text_ffp(kv, n, &c->text_pending, send_targets, c);
    if (n < 0) { /* malformed, or nothing lungate can answer but a Reject */
      iscsi_text_free(&c->text_pending);
      lg_kv(LG_DEBUG, "Text request rejected", "peer=%s", c->peer);
      return iscsi_send_reject(c, ISCSI_REJECT_PROTOCOL_ERROR, bhs);
    }
  } else if (ttt != c->text_ttt || !c->text_pending.buf) {
    return iscsi_send_reject(c, ISCSI_REJECT_INVALID_PDU_FIELD, bhs);
  }

  size_t left = c->text_pending.len - c->text_sent;
  size_t chunk = left < c->params.max_recv_dsl_initiator ? left : c->params.max_recv_dsl_initiator;
  if (chunk < left) { /* more to come: C bit and a TTT to continue with */
    rsp[1] = ISCSI_FLAG_CONTINUE;
    c->text_ttt = (c->text_ttt + 1) & 0x7fffffff;
    bhs_put32(rsp, BHS_TTT, c->text_ttt);
  } else {
    rsp[1] = ISCSI_FLAG_FINAL;
    bhs_put32(rsp, BHS_TTT, ISCSI_RSVD_TAG);
  }
  int r = iscsi_send(c, rsp, c->text_pending.buf ? c->text_pending.buf + c->text_sent : NULL,
                     (uint32_t)chunk, SN_STAT);
  c->text_sent += chunk;
  if (c->text_sent >= c->text_pending.len) {
    iscsi_text_free(&c->text_pending);
    c->text_sent = 0;
  }
  return r;
}
