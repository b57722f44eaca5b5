/* SPC-4 persistent reservations: the state of one logical unit and the
 * PERSISTENT RESERVE OUT state machine, free of any transport, so that unit
 * tests drive it directly.
 *
 * An I_T nexus is named by its initiator port (iSCSI name + ISID) and target
 * port (target name + portal group tag).  Registrations outlive the nexus (a
 * reconnect with the same ISID finds its key again).  pr_out() changes the
 * state and says what else must happen (unit attentions, tasks to abort) in
 * a struct pr_effects, which the caller applies to the live nexuses.
 * The caller serializes every call on one state (the LU's lock).
 */
#ifndef LUNGATE_SCSI_PR_H
#define LUNGATE_SCSI_PR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PR_NAME_MAX 224              /* iSCSI names are at most 223 bytes */
#define PR_MAX_REGS 256              /* registrations per LU */
#define PR_MAX_EFFECTS 64            /* unit attentions one command may cause */

/* Reservation types (PERSISTENT RESERVE OUT TYPE field). */
enum {
  PR_WE = 1, PR_EA = 3, PR_WE_RO = 5, PR_EA_RO = 6, PR_WE_AR = 7, PR_EA_AR = 8,
};

/* Service actions of PERSISTENT RESERVE OUT. */
enum {
  PR_REGISTER = 0, PR_RESERVE = 1, PR_RELEASE = 2, PR_CLEAR = 3, PR_PREEMPT = 4,
  PR_PREEMPT_ABORT = 5, PR_REGISTER_IGNORE = 6, PR_REGISTER_MOVE = 7,
};

/* Identity of an I_T nexus. */
struct pr_id {
  char initiator[PR_NAME_MAX];
  uint8_t isid[6];
  char target[PR_NAME_MAX];
  uint16_t tpgt;
};

struct pr_reg {
  struct pr_id id;
  uint64_t key;
};

struct pr_state {
  uint32_t generation;               /* PRGENERATION */
  struct pr_reg *regs;
  size_t n_regs;
  bool reserved;
  uint8_t type;                      /* PR_WE ... when reserved */
  struct pr_id holder;               /* when reserved and not an all-registrants type */
  bool aptpl;                        /* persist through power loss */
};

/* What a PERSISTENT RESERVE OUT asks of the nexuses besides the state change. */
struct pr_effects {
  struct {
    struct pr_id id;
    uint16_t asc;                    /* ASC/ASCQ of the unit attention */
    bool abort;                      /* PREEMPT AND ABORT: abort its tasks too */
  } ua[PR_MAX_EFFECTS];
  size_t n_ua;
  bool changed;                      /* state changed (save it if APTPL) */
};

/* The answer of pr_out(). */
enum pr_result {
  PR_OK,
  PR_CONFLICT,                       /* RESERVATION CONFLICT status */
  PR_BAD_CDB,                        /* INVALID FIELD IN CDB at bad_byte/bad_bit */
  PR_BAD_PARAM,                      /* INVALID FIELD IN PARAMETER LIST at bad_byte/bad_bit */
  PR_BAD_LENGTH,                     /* PARAMETER LIST LENGTH ERROR */
  PR_BAD_RELEASE,                    /* INVALID RELEASE OF PERSISTENT RESERVATION */
  PR_NO_SPACE,                       /* INSUFFICIENT REGISTRATION RESOURCES */
};

struct pr_out_result {
  enum pr_result rc;
  unsigned bad_byte;
  int bad_bit;                       /* -1: the whole byte */
};

#define PR_PARAM_LEN 24              /* basic PERSISTENT RESERVE OUT parameter list */

/* Run PERSISTENT RESERVE OUT (cdb: its 10 bytes; param: len bytes of
 * parameter list) for nexus me.  aptpl_ok: APTPL=1 may be honoured. */
struct pr_out_result pr_out(struct pr_state *st, const struct pr_id *me, const uint8_t *cdb,
                            const uint8_t *param, uint32_t len, bool aptpl_ok,
                            struct pr_effects *fx);

/* PERSISTENT RESERVE IN service actions 0..3 into d (cap bytes); the full
 * length of the answer (which may exceed cap). */
size_t pr_in(const struct pr_state *st, uint8_t sa, bool ptpl_c, uint8_t *d, size_t cap);

/* Does the persistent reservation forbid this command (by its CDB) from nexus
 * me?  writes: the command modifies the medium. */
bool pr_conflict(const struct pr_state *st, const struct pr_id *me, const uint8_t *cdb,
                 bool writes);

/* Is the nexus registered? */
bool pr_registered(const struct pr_state *st, const struct pr_id *me);

bool pr_id_equal(const struct pr_id *a, const struct pr_id *b);
void pr_state_clear(struct pr_state *st);

/* APTPL state file: write atomically (temporary file, fsync, rename, fsync of
 * the directory) or, when st->aptpl is off, remove it.  0 or -errno. */
int pr_save(const struct pr_state *st, const char *path);
/* Load a state file written by pr_save; a missing file leaves an empty state.
 * 0 or -errno (-EINVAL: not a state file of ours). */
int pr_load(struct pr_state *st, const char *path);

#endif
