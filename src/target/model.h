/* The target model: storage objects, targets, TPGs, LUNs, portals and node ACLs,
 * as loaded from an rtslib-fb shaped saveconfig.json, and the per-initiator
 * resolution of which LUNs a session sees.
 *
 * A model is immutable once loaded; sessions hold a reference to it.
 */
#ifndef LUNGATE_TARGET_MODEL_H
#define LUNGATE_TARGET_MODEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <sys/socket.h>

#include "lungate/backstore.h"
#include "ops/metrics.h"

struct scsi_lu;
struct cow_boot;

/* An opened storage object (backstore instance). */
struct lg_storage {
  char *name;                        /* storage object name */
  char *plugin;                      /* rtslib plugin name */
  const struct lg_backstore_ops *ops;
  void *h;                           /* backstore handle */
  uint64_t size;                     /* bytes */
  uint32_t block_size;               /* bytes per logical block */
  bool readonly;                     /* backstore cannot write */
  uint8_t device_type;               /* SCSI peripheral type: LG_DEV_DISK or LG_DEV_CD */
  char serial[33];                   /* unit serial (VPD 0x80), from wwn */
  uint8_t naa[16];                   /* NAA IEEE registered extended id (VPD 0x83) */
  /* per-initiator storage (cow with per_initiator): each initiator gets a view */
  bool per_initiator;
  int64_t reset_after_idle;          /* seconds; -1: never reset */
  bool reset_on_boot;                /* "reset": "on_boot": every boot starts from the base */
  bool shared_initiators;            /* one initiator name may log in from two addresses */
  bool is_base;                      /* another storage object's base: read-only */
  /* a fenced disk (overlays.c): a running OS whose disk a forced action took
   * away; every command but INQUIRY, REPORT LUNS and REQUEST SENSE fails with
   * NOT READY, MANUAL INTERVENTION REQUIRED until the client boots again */
  bool fenced;
  /* reads and writes hold it shared; COMPARE AND WRITE, WRITE ATOMIC and
   * ORWRITE exclusively (their atomicity).  lg_io_lock_init makes waiting
   * writers go first; all-zero bytes are a valid initial state too */
  pthread_rwlock_t io_lock;
  atomic_uint async_reads;           /* requests started with ->*_async (reads and
                                      * writes) in flight: shared holders that have
                                      * let go of io_lock */
  /* RESERVE(6/10): the I_T nexus (a session's scsi_nexus) holding the LU */
  _Atomic uintptr_t reserved_by;
  /* SCSI state of the logical unit (persistent reservations, unit attentions,
   * mode pages), made on first use by the SCSI layer; NULL until then */
  struct scsi_lu *_Atomic lu;
  char *pr_file;                     /* APTPL state file, or NULL: APTPL refused */
  /* per-initiator storage: its open views and their lock (overlays.c),
   * made on first use, freed with the object by lg_overlays_forget */
  struct lg_ov_reg *ovr;
  /* shared by the models that define it alike: a reload keeps it open */
  atomic_int refs;                   /* models holding it */
  json_t *def;                       /* its storage_objects entry */
  struct lg_storage *base;           /* the object below a layered one (held) */
};

#define LG_DEV_DISK 0x00                 /* SBC direct access block device */
#define LG_DEV_CD   0x05                 /* MMC CD-ROM ("device_type": "cd") */
#define LG_CD_BLOCK 2048                 /* a CD's logical block */

struct lg_lun {
  uint64_t index;                    /* LUN number in the TPG */
  struct lg_storage *so;
  struct lg_lun_stats stats;         /* for the metrics endpoint */
};

struct lg_mapped_lun {
  uint64_t index;                    /* LUN number the initiator sees */
  uint64_t tpg_lun;                  /* LUN index in the TPG */
  bool write_protect;
};

/* CHAP credentials: the initiator proves userid/password to us; with
 * mutual_userid/mutual_password we prove ourselves to it.  NULL: unset. */
struct lg_chap {
  char *userid, *password;
  char *mutual_userid, *mutual_password;
};

/* A CIDR block of allowed_addresses (IPv4 addresses are kept v4-mapped). */
struct lg_cidr {
  uint8_t addr[16];
  unsigned prefix;                   /* bits, of the 128 */
};

struct lg_acl {
  char *node_wwn;                    /* initiator IQN or pattern with '*' */
  struct lg_mapped_lun *mapped;
  size_t n_mapped;
  struct lg_chap chap;
  struct lg_cidr *allowed;           /* allowed_addresses; NULL: any */
  size_t n_allowed;
};

struct lg_portal {
  char *ip;                          /* as written: "0.0.0.0", "[::]", "::1" */
  uint16_t port;
};

/* Login key defaults a TPG offers (rtslib "parameters"). */
struct lg_params {
  bool initial_r2t;
  bool immediate_data;
  uint32_t max_recv_data_segment_length;
  uint32_t max_burst_length;
  uint32_t first_burst_length;
  uint32_t max_outstanding_r2t;
  uint32_t default_time2wait;
  uint32_t default_time2retain;
  bool header_digest_crc32c;         /* we accept CRC32C header digests */
  bool data_digest_crc32c;
};

struct lg_tpg {
  struct lg_chap chap;               /* for initiators without their own ACL */
  struct lg_cidr *allowed;           /* allowed_addresses; NULL: any */
  size_t n_allowed;
  uint16_t tag;
  bool enable;
  bool generate_node_acls;
  bool authentication;
  bool demo_mode_write_protect;
  unsigned nopin_timeout;            /* s idle before a NOP-In ping; 0: no pings */
  unsigned nopin_response_timeout;   /* s for its answer, else close; 0: never close */
  struct lg_params params;
  struct lg_portal *portals;
  size_t n_portals;
  struct lg_lun *luns;
  size_t n_luns;
  struct lg_acl *acls;
  size_t n_acls;
};

struct lg_target {
  char *iqn;
  struct lg_tpg *tpgs;
  size_t n_tpgs;
};

struct lg_model {
  atomic_int refs;                   /* the server, connections, the FUSE view */
  json_t *json;                      /* the config as loaded (unknown keys kept) */
  char *path;                        /* config file, or NULL */
  unsigned generation;               /* 1, then one more per reload */
  struct lg_storage **storage;       /* reference-counted, shared across reloads */
  size_t n_storage;
  struct lg_target *targets;
  size_t n_targets;
  bool discovery_auth;               /* fabric_modules: discovery_enable_auth */
  struct lg_chap discovery_chap;
};

/* What one initiator sees of one TPG: LUN number -> storage, write protect. */
struct lg_lun_view {
  uint64_t index;
  struct lg_storage *so;
  bool write_protect;
  struct lg_overlay *overlay;        /* the initiator's overlay, if per-initiator */
  struct lg_storage *unfenced;       /* so is a fenced copy of this one (owned) */
  struct lg_lun_stats *stats;        /* the TPG LUN's counters */
};

/* Per-initiator overlays (overlays.c): one open view per (storage object,
 * initiator), shared by every session of that initiator, counted by session. */
struct lg_overlay;
/* Give the session (ISID isid) of an initiator at address peer_ip to target
 * its view of the per-initiator LUNs in v (replacing v[i].so): its overlay,
 * reset first when the login starts a boot and the reset policy says so, or
 * a fenced disk when the login continues an OS whose disk a forced action or
 * a reload took away (see overlays.c for the rule).  Refuses (-EBUSY,
 * message in *why) when the same initiator name is live from another address. */
int lg_overlays_acquire(struct lg_lun_view *v, size_t n, const char *target,
                        const char *initiator, const uint8_t isid[6],
                        const char *peer_ip, char **why);
/* The session ends (clean: with a Logout); target and initiator NULL when
 * the login that acquired them failed. */
void lg_overlays_release(struct lg_lun_view *v, size_t n, const char *target,
                         const char *initiator, bool clean);
/* For inspection (the FUSE view): the open view of an initiator on a
 * per-initiator storage object, opened if need be (never reset) and shared
 * with that initiator's sessions.  NULL with a message in *why. */
struct lg_storage *lg_overlay_get(struct lg_storage *tmpl, const char *initiator, char **why);
void lg_overlay_put(struct lg_storage *view);
/* Does an iSCSI session use this view now? */
bool lg_overlay_is_live(struct lg_storage *view);
/* Does an iSCSI session of initiator use its view of tmpl now?  Opens nothing. */
bool lg_overlay_is_live_by_name(struct lg_storage *tmpl, const char *initiator);
/* While blocked, logins of initiator that would use its overlay of tmpl are
 * refused (an administrator's reset or commit is under way). */
void lg_overlay_block(const struct lg_storage *tmpl, const char *initiator, bool block);
/* Write initiator's boot record on tmpl as fenced: its logins with the ISIDs
 * of the boot it had (the record read from its overlay before a forced
 * reset, in *boot) get a failing disk until it boots again.  Creates the
 * (empty) overlay that keeps the record. */
int lg_overlay_fence(struct lg_storage *tmpl, const char *initiator,
                     const struct cow_boot *boot);
/* A storage object is freed: its overlay registry (all views closed) goes. */
void lg_overlays_forget(struct lg_storage *so);
/* The per-initiator storage object an open overlay belongs to. */
const struct lg_storage *lg_overlay_template(const struct lg_overlay *o);
/* Allocated bytes of the open view of initiator on tmpl, which live writes
 * keep current; false when no view is open.  Opens nothing. */
bool lg_overlay_allocated_open(struct lg_storage *tmpl, const char *initiator,
                               uint64_t *bytes);

/* Initialize a storage object's io_lock: a waiting exclusive holder is not
 * starved by a steady stream of shared ones. */
void lg_io_lock_init(pthread_rwlock_t *lock);

/* Load a model from a JSON config; NULL with a message in *err (malloc'd). */
struct lg_model *lg_model_load(const json_t *config, const char *path, char **err);
/* Parse and load a config file. */
struct lg_model *lg_model_load_file(const char *path, char **err);
/* Load a config file again (a reload): storage objects whose definition is
 * unchanged are shared with prev, not opened a second time. */
struct lg_model *lg_model_reload_file(const char *path, const struct lg_model *prev,
                                      char **err);
/* A reload from a config already in memory (an object command applied to a
 * running gateway); path stays the config file. */
struct lg_model *lg_model_reload_json(const json_t *config, const char *path,
                                      const struct lg_model *prev, char **err);
/* Write a config to path atomically, as lg_model_save does.  -errno. */
int lg_json_save(const json_t *config, const char *path);
/* Write the model's JSON (unknown keys included) to path atomically: a
 * temporary file in the same directory, fsync, rename; mode 0600.  -errno. */
int lg_model_save(const struct lg_model *m, const char *path);
void lg_model_ref(struct lg_model *m);
void lg_model_unref(struct lg_model *m);

/* The default iSCSI parameters lungate offers. */
void lg_params_default(struct lg_params *p);

struct lg_target *lg_model_find_target(struct lg_model *m, const char *iqn);
/* The enabled TPG of a target (the first one). */
struct lg_tpg *lg_target_tpg(struct lg_target *t);

/* Resolve the LUNs an initiator sees in a TPG.  Returns the number of LUNs
 * (0 is valid), or -EACCES when the initiator is not allowed at all.  *out is
 * malloc'd and sorted by LUN number. */
int lg_tpg_resolve(const struct lg_tpg *tpg, const char *initiator,
                   struct lg_lun_view **out);

/* The node ACL that applies to an initiator (exact name first), or NULL. */
const struct lg_acl *lg_tpg_find_acl(const struct lg_tpg *tpg, const char *initiator);

/* Is the address (sockaddr_in or _in6) allowed by the TPG and by the ACL
 * that applies to the initiator? */
bool lg_address_allowed(const struct lg_tpg *tpg, const char *initiator,
                        const struct sockaddr *sa);
/* Parse "a.b.c.d/n", "x::y/n" or a bare address; -EINVAL. */
int lg_cidr_parse(const char *s, struct lg_cidr *out);

/* Case-insensitive match of an iSCSI name against a pattern with '*'. */
bool lg_name_match(const char *pattern, const char *name);

#endif
