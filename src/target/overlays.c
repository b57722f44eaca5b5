/* Per-initiator overlays: the open view of each (storage object, initiator),
 * shared by all sessions of that initiator (iPXE's, then the OS's through
 * the iBFT), and the rule that one initiator name is one machine.
 *
 * Locking: each per-initiator storage object has its own registry (struct
 * lg_ov_reg: its open views, the clients an administrator holds off, and the
 * lock guarding them and every field of its views).  Resetting a client's
 * layer or writing its boot record waits on the backstore under that lock
 * (a stalled Ceph cluster: up to its osd_op_timeout per call), so one lock
 * for all would make every login of the gateway wait for one storage
 * object's trouble.  Opening and closing a view are done without it: the
 * view is on the list meanwhile, marked busy, and whoever looks for that
 * client (find) waits until it is open or gone; other clients go on.  An
 * open can wait seconds (an RBD clone's lock that another gateway is
 * letting go), and a room's logins all go through one registry: under the
 * lock, a drain that moved ten clients at once made them wait for each
 * other past the lock's 8 s (seen in the soak with three gateways).
 * The boot memory (every target's) has its own lock, taken last. */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/cow.h"
#include "target/boot_rule.h"
#include "scsi/scsi.h"
#include "target/model.h"
#include "ops/metrics.h"
#include "util/log.h"

struct lg_overlay {
  struct lg_overlay *next;
  struct lg_storage *tmpl;           /* the per-initiator storage object */
  char *initiator;                   /* normalized */
  struct lg_storage view;            /* what the session's LUN points at */
  unsigned refs;                     /* sessions + inspectors (the FUSE view) */
  unsigned sessions;                 /* live iSCSI sessions */
  char peer[48];                     /* the one address they come from */
  struct cow_boot boot;              /* the client's current boot (the rule below) */
  bool detached;                     /* an older boot's view, off the list: its file
                                      * has no name now ("on_boot" gave the client a
                                      * fresh one while its sessions still looked alive) */
  bool busy;                         /* being opened or closed, without the lock */
};

/* Overlays an administrator's reset or commit is working on: no login. */
struct ov_block {
  struct ov_block *next;
  const struct lg_storage *tmpl;
  char *initiator;                   /* normalized */
};

struct lg_ov_reg {
  pthread_mutex_t mu;
  pthread_cond_t cv;                 /* a busy view was opened or closed */
  struct lg_overlay *head;           /* open views */
  struct ov_block *blocked;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER; /* makes registries */
/* without memory for its own, an object shares this one (lookups check the
 * object, so sharing is only slower) */
static struct lg_ov_reg reg_shared = { .mu = PTHREAD_MUTEX_INITIALIZER,
                                       .cv = PTHREAD_COND_INITIALIZER };

/* tmpl's registry, made on first use; the caller locks its mu. */
static struct lg_ov_reg *reg_of(const struct lg_storage *tmpl)
{
  struct lg_storage *t = (struct lg_storage *)tmpl; /* the registry, not the object, changes */
  pthread_mutex_lock(&reg_lock);
  if (!t->ovr) {
    t->ovr = calloc(1, sizeof *t->ovr);
    if (t->ovr) {
      pthread_mutex_init(&t->ovr->mu, NULL);
      pthread_cond_init(&t->ovr->cv, NULL);
    } else
      t->ovr = &reg_shared;
  }
  struct lg_ov_reg *r = t->ovr;
  pthread_mutex_unlock(&reg_lock);
  return r;
}

void lg_overlays_forget(struct lg_storage *so)
{
  struct lg_ov_reg *r = so->ovr;
  so->ovr = NULL;
  if (!r || r == &reg_shared)
    return;
  while (r->blocked) { /* none left once the control commands ended */
    struct ov_block *b = r->blocked;
    r->blocked = b->next;
    free(b->initiator);
    free(b);
  }
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

/* Under tmpl's registry lock, as every function below that reads or changes
 * a registry or a view. */
static bool is_blocked(const struct lg_storage *tmpl, const char *norm)
{
  for (struct ov_block *b = tmpl->ovr->blocked; b; b = b->next)
    if (b->tmpl == tmpl && !strcmp(b->initiator, norm))
      return true;
  return false;
}

/* The client's open view, or NULL; a view being opened or closed is waited
 * for (the lock is let go meanwhile: callers hold no other view's pointer
 * without a reference). */
static struct lg_overlay *find(const struct lg_storage *tmpl, const char *norm)
{
  for (;;) {
    struct lg_overlay *o;
    for (o = tmpl->ovr->head; o; o = o->next)
      if (o->tmpl == tmpl && !strcmp(o->initiator, norm))
        break;
    if (!o || !o->busy)
      return o;
    pthread_cond_wait(&tmpl->ovr->cv, &tmpl->ovr->mu);
  }
}

static void unlink_view(struct lg_overlay *o)
{
  for (struct lg_overlay **pp = &o->tmpl->ovr->head; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
}

static struct lg_overlay *view_overlay(struct lg_storage *view)
{
  return (struct lg_overlay *)((char *)view - offsetof(struct lg_overlay, view));
}

/* Drop one reference; the last one closes the view, without the lock (an RBD
 * clone's close writes to the cluster and lets its lock go).  Under the
 * lock, which is let go meanwhile. */
static void put_locked(struct lg_overlay *o)
{
  if (--o->refs)
    return;
  struct lg_ov_reg *r = o->tmpl->ovr;
  o->busy = true;
  pthread_mutex_unlock(&r->mu);
  o->tmpl->ops->close(o->view.h);
  pthread_mutex_lock(&r->mu);
  unlink_view(o);
  pthread_cond_broadcast(&r->cv);
  pthread_rwlock_destroy(&o->view.io_lock);
  scsi_lu_free(&o->view);
  free(o->initiator);
  free(o);
}

/* ---- a boot or a reconnect: the rule is in boot_rule.c ---- */
#define BOOT_MEMORY_MAX 4096            /* remembered (target, LUN, client) boots */

static void isid_hex(const uint8_t isid[6], char out[13])
{
  snprintf(out, 13, "%02x%02x%02x%02x%02x%02x", isid[0], isid[1], isid[2], isid[3], isid[4],
           isid[5]);
}

/* What makes a LUN's disk the same disk across a reload: for a per-initiator
 * cow, its overlay folder and its base's definition (quota or reset policy
 * may change); for anything else, its definition. */
static char *disk_id(const struct lg_storage *so)
{
  char *def = so->def ? json_dumps(so->def, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
  char *bdef = so->base && so->base->def
                   ? json_dumps(so->base->def, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
  char *id = NULL;
  /* the layers' folder, or their Ceph pool */
  const char *dir = so->def ? json_string_value(json_object_get(so->def, "overlay_dir")) : NULL;
  const char *pool = so->def ? json_string_value(json_object_get(so->def, "overlay_pool")) : NULL;
  int r = so->per_initiator
              ? asprintf(&id, "cow|%s|%s|%s|%s", dir ? dir : "", pool ? pool : "",
                         so->base ? so->base->name : "", bdef ? bdef : "")
              : asprintf(&id, "%s|%s|%s", so->plugin ? so->plugin : "", so->name,
                         def ? def : "");
  free(def);
  free(bdef);
  return r < 0 ? NULL : id;
}

/* The disk each (target, LUN, client) last booted on, with that boot's
 * ISIDs: a reload that changes the disk under a LUN fences them. */
struct boot_mem {
  struct boot_mem *next;
  char *target, *initiator;          /* initiator normalized */
  uint64_t lun;
  char *disk;                        /* disk_id() */
  struct cow_boot boot;
};
static struct boot_mem *mem_head;
static size_t mem_count;
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER; /* mem_head, mem_count */

static struct boot_mem *mem_find(const char *target, uint64_t lun, const char *norm)
{
  for (struct boot_mem *m = mem_head; m; m = m->next)
    if (m->lun == lun && !strcmp(m->initiator, norm) && !strcasecmp(m->target, target))
      return m;
  return NULL;
}

static void mem_free(struct boot_mem *m)
{
  free(m->target);
  free(m->initiator);
  free(m->disk);
  free(m);
}

/* Remember the boot b of norm on the disk of so behind (target, lun). */
static void mem_note_locked(const char *target, uint64_t lun, const char *norm,
                            const struct lg_storage *so, const struct cow_boot *b)
{
  struct boot_mem *m = mem_find(target, lun, norm);
  if (!m) {
    if (!(m = calloc(1, sizeof *m)) || !(m->target = strdup(target)) ||
        !(m->initiator = strdup(norm))) {
      if (m)
        mem_free(m);
      return;
    }
    m->lun = lun;
    m->next = mem_head;
    mem_head = m;
    if (++mem_count > BOOT_MEMORY_MAX) { /* forget the oldest */
      struct boot_mem **pp = &mem_head;
      while ((*pp)->next)
        pp = &(*pp)->next;
      mem_free(*pp);
      *pp = NULL;
      mem_count--;
    }
  }
  char *id = disk_id(so);
  if (id) {
    free(m->disk);
    m->disk = id;
  }
  m->boot = *b;
}

static void mem_note(const char *target, uint64_t lun, const char *norm,
                     const struct lg_storage *so, const struct cow_boot *b)
{
  pthread_mutex_lock(&mem_lock);
  mem_note_locked(target, lun, norm, so, b);
  pthread_mutex_unlock(&mem_lock);
}

/* Is this login the continuation of an OS that ran on another disk behind
 * the same LUN (changed by a reload)? */
static bool replaced_disk(const char *target, uint64_t lun, const char *norm,
                          const struct lg_storage *so, const uint8_t isid[6])
{
  pthread_mutex_lock(&mem_lock);
  struct boot_mem *m = mem_find(target, lun, norm);
  char *disk = m && m->disk ? strdup(m->disk) : NULL;
  struct cow_boot b = m ? m->boot : (struct cow_boot){ 0 };
  pthread_mutex_unlock(&mem_lock);
  if (!disk)
    return false;
  const char *why;
  b.fenced = true; /* judged as if fenced: a reconnect of that boot? */
  bool other = false;
  if (lg_login_kind(&b, false, isid, (uint64_t)time(NULL), &why) == LG_LOGIN_FENCED) {
    char *id = disk_id(so);
    other = id && strcmp(id, disk);
    free(id);
  }
  free(disk);
  return other;
}

/* A fenced copy of so for one session (lg_lun_view.unfenced keeps so). */
static struct lg_storage *fenced_copy(struct lg_storage *so)
{
  struct lg_storage *f = malloc(sizeof *f);
  if (!f)
    return NULL;
  *f = *so;
  lg_io_lock_init(&f->io_lock);
  atomic_init(&f->async_reads, 0);
  atomic_init(&f->reserved_by, 0);
  f->lu = NULL;
  f->pr_file = NULL;
  f->per_initiator = false;
  f->readonly = true;
  f->fenced = true;
  return f;
}

static void fenced_free(struct lg_storage *f)
{
  pthread_rwlock_destroy(&f->io_lock);
  scsi_lu_free(f);
  free(f);
}

/* Open a view of initiator's overlay (opened by nobody now: find said so).
 * Under the lock, which is let go while the backstore opens it. */
static struct lg_overlay *overlay_open(struct lg_storage *tmpl, const char *initiator,
                                       const char *norm, const struct cow_boot *boot,
                                       char **why)
{
  struct lg_overlay *o = calloc(1, sizeof *o);
  if (!o || !(o->initiator = strdup(norm))) {
    free(o);
    return NULL;
  }
  o->tmpl = tmpl;
  o->busy = true; /* on the list, so that nobody opens it twice */
  o->next = tmpl->ovr->head;
  tmpl->ovr->head = o;
  pthread_mutex_unlock(&tmpl->ovr->mu);
  void *h = tmpl->ops->open_client(tmpl->h, initiator);
  if (!h && asprintf(why, "%s", lg_get_error()) < 0)
    *why = NULL;
  pthread_mutex_lock(&tmpl->ovr->mu);
  o->busy = false;
  pthread_cond_broadcast(&tmpl->ovr->cv);
  if (!h) {
    unlink_view(o);
    free(o->initiator);
    free(o);
    return NULL;
  }
  o->view = *tmpl;
  lg_io_lock_init(&o->view.io_lock); /* its own, not a copy of the template's */
  atomic_init(&o->view.async_reads, 0);
  o->view.lu = NULL;               /* its own SCSI state, made on first use */
  o->view.pr_file = NULL;          /* no APTPL for a per-initiator disk */
  o->view.h = h;
  o->view.size = tmpl->ops->size(h); /* its version's (versions may differ in size) */
  o->view.per_initiator = false;
  o->view.readonly = !tmpl->ops->can_write(h);
  if (boot)
    o->boot = *boot;
  return o;
}

/* The boot record and last session end of a client with no open view. */
static bool record_read(struct lg_storage *tmpl, const char *initiator, struct cow_info *info)
{
  return cow_record_read(tmpl->h, initiator, info) == 0;
}

/* A login that starts a boot: the "after_idle" policy, on a closed overlay;
 * true when it removed the layer. */
static bool boot_reset_policy(struct lg_storage *tmpl, const char *initiator,
                              const struct cow_info *info, const char *isid)
{
  if (tmpl->reset_after_idle < 0 || info->unclean) /* a crash is not idleness */
    return false;
  uint64_t idle = (uint64_t)time(NULL) - info->last_use;
  if (idle <= (uint64_t)tmpl->reset_after_idle)
    return false;
  int r = cow_overlay_remove(tmpl->h, initiator);
  if (r == 0)
    lg_stats_policy_reset(LG_RESET_AFTER_IDLE);
  char safe[LG_SAFE_MAX];
  lg_kv(r < 0 ? LG_ERROR : LG_INFO, "overlay reset", "storage=%s initiator=%s isid=%s "
        "idle=%llus policy=after_idle:%lld reason=boot%s%s", tmpl->name,
        lg_safe(initiator, safe, sizeof safe), isid, (unsigned long long)idle,
        (long long)tmpl->reset_after_idle, r < 0 ? " err=" : "", r < 0 ? LG_Q(strerror(-r)) : "");
  return r == 0;
}

/* Is initiator (normalized) one of tmpl's "maintainers", who always keep
 * their layer whatever the reset policy? */
static bool is_maintainer(const struct lg_storage *tmpl, const char *norm)
{
  json_t *list = tmpl->def ? json_object_get(tmpl->def, "maintainers") : NULL;
  size_t i;
  json_t *m;
  json_array_foreach(list, i, m) {
    const char *name = json_string_value(m);
    if (name && !strcasecmp(name, norm))
      return true;
  }
  return false;
}

/* A login that starts a boot under "reset": "on_boot": the client starts
 * again from the base.  If the client's view is open (the old boot's sessions
 * still look alive: a hard reset leaves their connections open, or the FUSE
 * view inspects it), its file gives up its name and the view leaves the list:
 * those sessions keep writing into a file nobody will ever open again, and
 * this boot gets a fresh one.  *o is NULL afterwards if the view was
 * detached.  Under tmpl's registry lock. */
static void boot_reset_on_boot(struct lg_storage *tmpl, const char *initiator,
                               struct lg_overlay **o, bool have, const struct cow_info *info,
                               const struct cow_boot *boot, const uint8_t isid[6],
                               const char *hex, enum lg_reset_policy policy)
{
  const char *pname = policy == LG_RESET_ON_BOOT ? "on_boot" : "on_new_version";
  char safe[LG_SAFE_MAX];
  int r = 0;
  const char *what = "";
  if (*o) {
    r = cow_view_detach((*o)->view.h);
    if (r == 0) {
      for (struct lg_overlay **pp = &tmpl->ovr->head; *pp; pp = &(*pp)->next)
        if (*pp == *o) {
          *pp = (*o)->next;
          break;
        }
      (*o)->detached = true;
      what = (*o)->sessions ? " old_sessions=detached" : " inspector=detached";
      *o = NULL;
    } else {
      lg_kv(LG_WARN, "overlay kept", "storage=%s initiator=%s isid=%s policy=%s "
            "reason=\"the previous boot's sessions still hold its disk\" err=%s "
            "action=\"this boot continues on it; reset it with lungate overlay reset "
            "--force\"", tmpl->name, lg_safe(initiator, safe, sizeof safe), hex, pname,
            LG_Q(strerror(-r)));
      return;
    }
  } else if (!have) {
    return; /* no layer yet: it starts from the base anyway */
  } else if (info->unclean && !lg_boot_firmware_again(boot, isid)) {
    /* the gateway died while the client used its disk: this login may be a
     * client still running (iPXE's DOS, QEMU) that lost its gateway longer
     * than the rule's reconnect window; leave its disk alone */
    lg_kv(LG_WARN, "overlay kept", "storage=%s initiator=%s isid=%s policy=%s "
          "reason=\"the gateway stopped while the client was using its disk; it may still "
          "be running\" action=\"reset it with lungate overlay reset if it booted\"",
          tmpl->name, lg_safe(initiator, safe, sizeof safe), hex, pname);
    return;
  } else {
    r = cow_overlay_remove(tmpl->h, initiator);
    if (r == -ENOENT)
      return;
  }
  if (r == 0)
    lg_stats_policy_reset(policy);
  char cur[32] = "";
  if (policy == LG_RESET_ON_NEW_VERSION)
    snprintf(cur, sizeof cur, " version=%u", cow_current_version(tmpl->h));
  lg_kv(r < 0 ? LG_ERROR : LG_INFO, "overlay reset", "storage=%s initiator=%s isid=%s "
        "policy=%s reason=boot%s%s%s%s", tmpl->name, lg_safe(initiator, safe, sizeof safe),
        hex, pname, cur, what, r < 0 ? " err=" : "", r < 0 ? LG_Q(strerror(-r)) : "");
}

/* Give v (a LUN of target) a fenced copy of its storage; false: no memory. */
static bool fence_view(struct lg_lun_view *v, const char *target, const char *initiator,
                       const char *isid, const char *why)
{
  struct lg_storage *f = fenced_copy(v->so);
  if (!f)
    return false;
  char safe[LG_SAFE_MAX];
  lg_kv(LG_WARN, "disk fenced", "target=%s lun=%llu storage=%s initiator=%s isid=%s reason=%s "
        "action=\"every command fails until the client boots again\"", LG_Q(target),
        (unsigned long long)v->index, LG_Q(v->so->name), lg_safe(initiator, safe, sizeof safe),
        isid, LG_Q(why));
  v->unfenced = v->so;
  v->so = f;
  return true;
}

/* One per-initiator LUN of lg_overlays_acquire, under tmpl's registry lock:
 * 0, or an error with v's LUN unchanged. */
static int acquire_one(struct lg_lun_view *v, struct lg_storage *tmpl, const char *target,
                       const char *initiator, const char *norm, const uint8_t isid[6],
                       const char *hex, const char *peer_ip, char **why)
{
  struct lg_overlay *o = find(tmpl, norm);
  if (is_blocked(tmpl, norm)) {
    if (asprintf(why, "the overlay on storage object \"%s\" is being reset or committed "
                 "by an administrator; log in again in a moment", tmpl->name) < 0)
      *why = NULL;
    return -EBUSY;
  }
  if (o && o->sessions && !tmpl->shared_initiators && strcmp(o->peer, peer_ip)) {
    char safe[LG_SAFE_MAX];
    if (asprintf(why, "initiator %s is already logged in from %s; a second machine "
                 "at %s with the same name would share its disk (set "
                 "\"shared_initiators\": true on storage object \"%s\" if that is "
                 "meant)", lg_safe(initiator, safe, sizeof safe), o->peer, peer_ip,
                 tmpl->name) < 0)
      *why = NULL;
    return -EBUSY;
  }
  /* a boot or a reconnect: the rule at the top of this section */
  struct cow_info info = { 0 };
  bool have = o ? false : record_read(tmpl, initiator, &info);
  struct cow_boot boot = o ? o->boot : info.boot;
  const char *kind_why;
  enum lg_login_kind kind = lg_login_kind(&boot, o && o->sessions, isid,
                                          (uint64_t)time(NULL), &kind_why);
  if (kind != LG_LOGIN_FENCED && replaced_disk(target, v->index, norm, tmpl, isid)) {
    kind = LG_LOGIN_FENCED;
    kind_why = "a reload gave this LUN another disk while the client's OS ran";
  }
  lg_stats_judged(kind == LG_LOGIN_BOOT ? LG_JUDGED_BOOT
                  : kind == LG_LOGIN_FENCED ? LG_JUDGED_FENCED : LG_JUDGED_RECONNECT);
  if (kind == LG_LOGIN_FENCED)
    return fence_view(v, target, initiator, hex, kind_why) ? 0 : -ENOMEM;
  char safe[LG_SAFE_MAX];
  lg_kv(LG_DEBUG, kind == LG_LOGIN_BOOT ? "boot" : "reconnect", "storage=%s initiator=%s "
        "isid=%s reason=%s", tmpl->name, lg_safe(initiator, safe, sizeof safe), hex,
        LG_Q(kind_why));
  if (kind == LG_LOGIN_BOOT) {
    if (is_maintainer(tmpl, norm))
      lg_kv(LG_DEBUG, "overlay kept", "storage=%s initiator=%s isid=%s reason=maintainer",
            tmpl->name, lg_safe(initiator, safe, sizeof safe), hex);
    else if (tmpl->reset_on_boot)
      boot_reset_on_boot(tmpl, initiator, &o, have, &info, &boot, isid, hex,
                         LG_RESET_ON_BOOT);
    else {
      if (have && !o && boot_reset_policy(tmpl, initiator, &info, hex))
        have = false;
      /* a new image version: this boot gets it, unless "on_new_version": "keep" */
      bool outdated = o ? cow_view_outdated(o->view.h)
                        : have && info.have_sum && cow_sum_outdated(tmpl->h, info.base_sum);
      if (outdated && !cow_keep_old_version(tmpl->h))
        boot_reset_on_boot(tmpl, initiator, &o, have, &info, &boot, isid, hex,
                           LG_RESET_ON_NEW_VERSION);
    }
    memset(&boot, 0, sizeof boot);
  }
  boot.clean = false;
  lg_boot_add(&boot, isid);
  if (!o && !(o = overlay_open(tmpl, initiator, norm, NULL, why)))
    return -EIO;
  o->boot = boot;
  if (o->sessions++ == 0)
    snprintf(o->peer, sizeof o->peer, "%s", peer_ip);
  cow_touch(o->view.h, true, &o->boot); /* live, with this boot's ISIDs */
  mem_note(target, v->index, norm, tmpl, &o->boot);
  o->refs++;
  v->overlay = o;
  v->so = &o->view;
  return 0;
}

int lg_overlays_acquire(struct lg_lun_view *v, size_t n, const char *target,
                        const char *initiator, const uint8_t isid[6],
                        const char *peer_ip, char **why)
{
  *why = NULL;
  char *norm = strdup(initiator);
  if (!norm)
    return -ENOMEM;
  cow_name_normalize(initiator, norm);
  char hex[13];
  isid_hex(isid, hex);
  int rc = 0;
  size_t i;
  for (i = 0; i < n && rc == 0; i++) {
    struct lg_storage *tmpl = v[i].so;
    if (!tmpl->per_initiator) {
      if (replaced_disk(target, v[i].index, norm, tmpl, isid) &&
          !fence_view(&v[i], target, initiator, hex,
                      "a reload gave this LUN another disk while the client's OS ran"))
        rc = -ENOMEM;
      continue;
    }
    struct lg_ov_reg *r = reg_of(tmpl);
    pthread_mutex_lock(&r->mu);
    rc = acquire_one(&v[i], tmpl, target, initiator, norm, isid, hex, peer_ip, why);
    pthread_mutex_unlock(&r->mu);
  }
  free(norm);
  if (rc)
    lg_overlays_release(v, i - 1, NULL, NULL, false);
  return rc;
}

/* A fenced session of initiator ended: its end counts for rule 3.  Under
 * tmpl's registry lock. */
static void fenced_end(struct lg_storage *tmpl, const char *initiator, bool clean)
{
  char *norm = strdup(initiator);
  if (!norm)
    return;
  cow_name_normalize(initiator, norm);
  char *why = NULL;
  struct lg_overlay *o = find(tmpl, norm);
  if (!o) {
    struct cow_info info = { 0 };
    if (record_read(tmpl, initiator, &info) && info.boot.fenced)
      o = overlay_open(tmpl, initiator, norm, &info.boot, &why);
  }
  if (o && o->boot.fenced) {
    o->refs++;
    o->boot.clean = clean;
    o->boot.last_end = (uint64_t)time(NULL);
    if (!o->sessions)
      cow_touch(o->view.h, false, &o->boot);
    put_locked(o);
  }
  free(why);
  free(norm);
}

void lg_overlays_release(struct lg_lun_view *v, size_t n, const char *target,
                         const char *initiator, bool clean)
{
  char *norm = strdup(initiator ? initiator : "");
  if (norm)
    cow_name_normalize(initiator ? initiator : "", norm);
  for (size_t i = 0; i < n; i++) {
    if (v[i].unfenced) {
      fenced_free(v[i].so);
      v[i].so = v[i].unfenced;
      v[i].unfenced = NULL;
      if (initiator && v[i].so->per_initiator) {
        struct lg_ov_reg *r = reg_of(v[i].so);
        pthread_mutex_lock(&r->mu);
        fenced_end(v[i].so, initiator, clean);
        pthread_mutex_unlock(&r->mu);
      }
      continue;
    }
    struct lg_overlay *o = v[i].overlay;
    if (!o)
      continue;
    v[i].overlay = NULL;
    v[i].so = o->tmpl;
    struct lg_ov_reg *r = reg_of(o->tmpl);
    pthread_mutex_lock(&r->mu);
    if (--o->sessions == 0) {
      o->boot.clean = clean;
      o->boot.last_end = (uint64_t)time(NULL);
      cow_touch(o->view.h, false, &o->boot);
    }
    if (target && norm && !o->detached) /* a detached view is no boot of now */
      mem_note(target, v[i].index, norm, o->tmpl, &o->boot);
    put_locked(o);
    pthread_mutex_unlock(&r->mu);
  }
  free(norm);
}

int lg_overlay_fence(struct lg_storage *tmpl, const char *initiator,
                     const struct cow_boot *boot)
{
  char *norm = strdup(initiator);
  if (!norm)
    return -ENOMEM;
  cow_name_normalize(initiator, norm);
  struct cow_boot b = *boot;
  b.fenced = true;
  char *why = NULL;
  struct lg_ov_reg *reg = reg_of(tmpl);
  pthread_mutex_lock(&reg->mu);
  struct lg_overlay *o = find(tmpl, norm);
  if (!o)
    o = overlay_open(tmpl, initiator, norm, &b, &why);
  int r = o ? 0 : -EIO;
  if (o) {
    o->refs++;
    o->boot = b;
    cow_touch(o->view.h, true, &b);   /* durable */
    cow_touch(o->view.h, false, &b);
    put_locked(o);
  }
  pthread_mutex_unlock(&reg->mu);
  if (r < 0)
    lg_err("overlay fence: storage=%s: %s", tmpl->name, why ? why : "cannot open the overlay");
  free(why);
  free(norm);
  return r;
}

struct lg_storage *lg_overlay_get(struct lg_storage *tmpl, const char *initiator, char **why)
{
  *why = NULL;
  char *norm = strdup(initiator);
  if (!norm)
    return NULL;
  cow_name_normalize(initiator, norm);
  struct lg_ov_reg *r = reg_of(tmpl);
  pthread_mutex_lock(&r->mu);
  struct lg_overlay *o = find(tmpl, norm);
  if (!o) {
    struct cow_info info = { 0 };
    bool have = record_read(tmpl, initiator, &info); /* only a login resets */
    o = overlay_open(tmpl, initiator, norm, have ? &info.boot : NULL, why);
  }
  if (o)
    o->refs++;
  pthread_mutex_unlock(&r->mu);
  free(norm);
  return o ? &o->view : NULL;
}

void lg_overlay_put(struct lg_storage *view)
{
  struct lg_ov_reg *r = reg_of(view_overlay(view)->tmpl);
  pthread_mutex_lock(&r->mu);
  put_locked(view_overlay(view));
  pthread_mutex_unlock(&r->mu);
}

bool lg_overlay_is_live(struct lg_storage *view)
{
  struct lg_ov_reg *r = reg_of(view_overlay(view)->tmpl);
  pthread_mutex_lock(&r->mu);
  bool live = view_overlay(view)->sessions > 0;
  pthread_mutex_unlock(&r->mu);
  return live;
}

/* Under tmpl's registry lock, the open view of an initiator's overlay, or NULL. */
static struct lg_overlay *find_by_name(struct lg_storage *tmpl, const char *initiator)
{
  char *norm = strdup(initiator);
  if (!norm)
    return NULL;
  cow_name_normalize(initiator, norm);
  struct lg_overlay *o = find(tmpl, norm);
  free(norm);
  return o;
}

bool lg_overlay_is_live_by_name(struct lg_storage *tmpl, const char *initiator)
{
  struct lg_ov_reg *r = reg_of(tmpl);
  pthread_mutex_lock(&r->mu);
  struct lg_overlay *o = find_by_name(tmpl, initiator);
  bool live = o && o->sessions > 0;
  pthread_mutex_unlock(&r->mu);
  return live;
}

void lg_overlay_block(const struct lg_storage *tmpl, const char *initiator, bool block)
{
  char *norm = strdup(initiator);
  if (!norm)
    return;
  cow_name_normalize(initiator, norm);
  struct lg_ov_reg *r = reg_of(tmpl);
  pthread_mutex_lock(&r->mu);
  if (block) {
    struct ov_block *b = calloc(1, sizeof *b);
    if (b) {
      b->tmpl = tmpl;
      b->initiator = norm;
      norm = NULL;
      b->next = r->blocked;
      r->blocked = b;
    }
  } else {
    for (struct ov_block **pp = &r->blocked; *pp; pp = &(*pp)->next)
      if ((*pp)->tmpl == tmpl && !strcmp((*pp)->initiator, norm)) {
        struct ov_block *b = *pp;
        *pp = b->next;
        free(b->initiator);
        free(b);
        break;
      }
  }
  pthread_mutex_unlock(&r->mu);
  free(norm);
}

const struct lg_storage *lg_overlay_template(const struct lg_overlay *o)
{
  return o->tmpl;
}

bool lg_overlay_allocated_open(struct lg_storage *tmpl, const char *initiator,
                               uint64_t *bytes)
{
  struct lg_ov_reg *r = reg_of(tmpl);
  pthread_mutex_lock(&r->mu);
  struct lg_overlay *o = find_by_name(tmpl, initiator);
  if (o)
    *bytes = cow_allocated(o->view.h);
  pthread_mutex_unlock(&r->mu);
  return o != NULL;
}
