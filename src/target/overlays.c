/* Per-initiator overlays: the open view of each (storage object, initiator),
 * shared by all sessions of that initiator (iPXE's, then the OS's through
 * the iBFT), and the rule that one initiator name is one machine. */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cow.h"
#include "scsi/scsi.h"
#include "target/model.h"
#include "util/log.h"

struct lg_overlay {
  struct lg_overlay *next;
  struct lg_storage *tmpl;           /* the per-initiator storage object */
  char *initiator;                   /* normalized */
  struct lg_storage view;            /* what the session's LUN points at */
  unsigned refs;                     /* sessions + inspectors (the FUSE view) */
  unsigned sessions;                 /* live iSCSI sessions */
  char peer[48];                     /* the one address they come from */
};

static pthread_mutex_t ov_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lg_overlay *ov_head;

/* Overlays an administrator's reset or commit is working on: no login. */
struct ov_block {
  struct ov_block *next;
  const struct lg_storage *tmpl;
  char *initiator;                   /* normalized */
};
static struct ov_block *ov_blocked;

static bool is_blocked(const struct lg_storage *tmpl, const char *norm)
{
  for (struct ov_block *b = ov_blocked; b; b = b->next)
    if (b->tmpl == tmpl && !strcmp(b->initiator, norm))
      return true;
  return false;
}

static struct lg_overlay *find(const struct lg_storage *tmpl, const char *norm)
{
  for (struct lg_overlay *o = ov_head; o; o = o->next)
    if (o->tmpl == tmpl && !strcmp(o->initiator, norm))
      return o;
  return NULL;
}

static struct lg_overlay *view_overlay(struct lg_storage *view)
{
  return (struct lg_overlay *)((char *)view - offsetof(struct lg_overlay, view));
}

/* Drop one reference; the last one closes the view.  Under ov_lock. */
static void put_locked(struct lg_overlay *o)
{
  if (--o->refs)
    return;
  for (struct lg_overlay **pp = &ov_head; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  o->tmpl->ops->close(o->view.h);
  pthread_rwlock_destroy(&o->view.io_lock);
  scsi_lu_free(&o->view);
  free(o->initiator);
  free(o);
}

/* Open a view, first applying the reset policy to an idle overlay. */
static struct lg_overlay *overlay_open(struct lg_storage *tmpl, const char *initiator,
                                       const char *norm, bool apply_reset, char **why)
{
  if (apply_reset && tmpl->reset_after_idle >= 0) {
    struct cow_info info; /* (of an overlay file, or of an RBD clone) */
    if (cow_client_info(tmpl->h, initiator, &info) == 0 && !info.unclean && /* a crash is not idleness */
        (uint64_t)time(NULL) - info.last_use > (uint64_t)tmpl->reset_after_idle) {
      int r = cow_overlay_remove(tmpl->h, initiator);
      char safe[LG_SAFE_MAX];
      lg_kv(r < 0 ? LG_ERROR : LG_INFO, "overlay reset", "storage=%s initiator=%s idle=%llus "
            "policy=after_idle:%lld%s%s", tmpl->name, lg_safe(initiator, safe, sizeof safe),
            (unsigned long long)(time(NULL) - info.last_use),
            (long long)tmpl->reset_after_idle, r < 0 ? " err=" : "",
            r < 0 ? LG_Q(strerror(-r)) : "");
    }
  }
  void *h = tmpl->ops->open_client(tmpl->h, initiator);
  if (!h) {
    if (asprintf(why, "%s", lg_get_error()) < 0)
      *why = NULL;
    return NULL;
  }
  struct lg_overlay *o = calloc(1, sizeof *o);
  if (!o || !(o->initiator = strdup(norm))) {
    free(o);
    tmpl->ops->close(h);
    return NULL;
  }
  o->tmpl = tmpl;
  o->view = *tmpl;
  lg_io_lock_init(&o->view.io_lock); /* its own, not a copy of the template's */
  atomic_init(&o->view.async_reads, 0);
  o->view.lu = NULL;               /* its own SCSI state, made on first use */
  o->view.pr_file = NULL;          /* no APTPL for a per-initiator disk */
  o->view.h = h;
  o->view.per_initiator = false;
  o->view.readonly = !tmpl->ops->can_write(h);
  return o;
}

int lg_overlays_acquire(struct lg_lun_view *v, size_t n, const char *initiator,
                        const char *peer_ip, char **why)
{
  *why = NULL;
  char *norm = strdup(initiator);
  if (!norm)
    return -ENOMEM;
  cow_name_normalize(initiator, norm);
  int rc = 0;
  size_t i;
  pthread_mutex_lock(&ov_lock);
  for (i = 0; i < n; i++) {
    struct lg_storage *tmpl = v[i].so;
    if (!tmpl->per_initiator)
      continue;
    struct lg_overlay *o = find(tmpl, norm);
    if (is_blocked(tmpl, norm)) {
      if (asprintf(why, "the overlay on storage object \"%s\" is being reset or committed "
                   "by an administrator; log in again in a moment", tmpl->name) < 0)
        *why = NULL;
      rc = -EBUSY;
      break;
    }
    if (o && o->sessions && !tmpl->shared_initiators && strcmp(o->peer, peer_ip)) {
      char safe[LG_SAFE_MAX];
      if (asprintf(why, "initiator %s is already logged in from %s; a second machine "
                   "at %s with the same name would share its disk (set "
                   "\"shared_initiators\": true on storage object \"%s\" if that is "
                   "meant)", lg_safe(initiator, safe, sizeof safe), o->peer, peer_ip,
                   tmpl->name) < 0)
        *why = NULL;
      rc = -EBUSY;
      break;
    }
    if (!o) {
      o = overlay_open(tmpl, initiator, norm, true, why);
      if (!o) {
        rc = -EIO;
        break;
      }
      o->next = ov_head;
      ov_head = o;
    }
    if (o->sessions++ == 0) {
      snprintf(o->peer, sizeof o->peer, "%s", peer_ip);
      cow_touch(o->view.h, true); /* a live mark: a crash is not idleness */
    }
    o->refs++;
    v[i].overlay = o;
    v[i].so = &o->view;
  }
  pthread_mutex_unlock(&ov_lock);
  free(norm);
  if (rc)
    lg_overlays_release(v, i);
  return rc;
}

void lg_overlays_release(struct lg_lun_view *v, size_t n)
{
  pthread_mutex_lock(&ov_lock);
  for (size_t i = 0; i < n; i++) {
    struct lg_overlay *o = v[i].overlay;
    if (!o)
      continue;
    v[i].overlay = NULL;
    v[i].so = o->tmpl;
    if (--o->sessions == 0)
      cow_touch(o->view.h, false);
    put_locked(o);
  }
  pthread_mutex_unlock(&ov_lock);
}

struct lg_storage *lg_overlay_get(struct lg_storage *tmpl, const char *initiator, char **why)
{
  *why = NULL;
  char *norm = strdup(initiator);
  if (!norm)
    return NULL;
  cow_name_normalize(initiator, norm);
  pthread_mutex_lock(&ov_lock);
  struct lg_overlay *o = find(tmpl, norm);
  if (!o) {
    o = overlay_open(tmpl, initiator, norm, false, why); /* only a login resets */
    if (o) {
      o->next = ov_head;
      ov_head = o;
    }
  }
  if (o)
    o->refs++;
  pthread_mutex_unlock(&ov_lock);
  free(norm);
  return o ? &o->view : NULL;
}

void lg_overlay_put(struct lg_storage *view)
{
  pthread_mutex_lock(&ov_lock);
  put_locked(view_overlay(view));
  pthread_mutex_unlock(&ov_lock);
}

bool lg_overlay_is_live(struct lg_storage *view)
{
  pthread_mutex_lock(&ov_lock);
  bool live = view_overlay(view)->sessions > 0;
  pthread_mutex_unlock(&ov_lock);
  return live;
}

/* Under ov_lock, the open view of an initiator's overlay, or NULL. */
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
  pthread_mutex_lock(&ov_lock);
  struct lg_overlay *o = find_by_name(tmpl, initiator);
  bool live = o && o->sessions > 0;
  pthread_mutex_unlock(&ov_lock);
  return live;
}

void lg_overlay_block(const struct lg_storage *tmpl, const char *initiator, bool block)
{
  char *norm = strdup(initiator);
  if (!norm)
    return;
  cow_name_normalize(initiator, norm);
  pthread_mutex_lock(&ov_lock);
  if (block) {
    struct ov_block *b = calloc(1, sizeof *b);
    if (b) {
      b->tmpl = tmpl;
      b->initiator = norm;
      norm = NULL;
      b->next = ov_blocked;
      ov_blocked = b;
    }
  } else {
    for (struct ov_block **pp = &ov_blocked; *pp; pp = &(*pp)->next)
      if ((*pp)->tmpl == tmpl && !strcmp((*pp)->initiator, norm)) {
        struct ov_block *b = *pp;
        *pp = b->next;
        free(b->initiator);
        free(b);
        break;
      }
  }
  pthread_mutex_unlock(&ov_lock);
  free(norm);
}

const struct lg_storage *lg_overlay_template(const struct lg_overlay *o)
{
  return o->tmpl;
}

bool lg_overlay_allocated_open(struct lg_storage *tmpl, const char *initiator,
                               uint64_t *bytes)
{
  pthread_mutex_lock(&ov_lock);
  struct lg_overlay *o = find_by_name(tmpl, initiator);
  if (o)
    *bytes = cow_allocated(o->view.h);
  pthread_mutex_unlock(&ov_lock);
  return o != NULL;
}
