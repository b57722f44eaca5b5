/* hostile: an iSCSI initiator that misbehaves on purpose (RFC 7143 framing).
 *
 * Over many connections it sends garbage before login, malformed logins, and,
 * after a valid login, rounds of malformed and out-of-range PDUs: random
 * opcodes and fields, huge DataSegmentLength, bad AHS, truncated PDUs, SCSI
 * commands with out-of-range LBAs and absurd transfer lengths, Data-Out for
 * unknown tasks, CmdSN outside the window, bad task management and text.
 * After each round of PDUs whose framing is intact it pings (NOP-Out with
 * data) and requires the echo, or that the target closed the connection.
 *
 * It also checks what the target must answer where the answer is fixed:
 * out-of-range READ/WRITE -> CHECK CONDITION, ILLEGAL REQUEST, LBA OUT OF RANGE;
 * a LUN that does not exist -> ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED;
 * unknown TargetName / missing InitiatorName / bad version -> login status
 * class 2; no data before login; SendTargets lists the target.
 *
 * It never sends a command that could change the LUN's data inside its range,
 * so the image must be unchanged afterwards. Bounded by --connections and
 * --seconds; exits 0 if every check held, 1 otherwise.
 *
 * usage: hostile --port PORT --iqn TARGET-IQN [--host 127.0.0.1]
 *                [--connections N] [--seconds S] [--procs P] [--seed X]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Opcodes (initiator -> target). */
enum {
	OP_NOP_OUT = 0x00,
	OP_SCSI_CMD = 0x01,
	OP_TMF_REQ = 0x02,
	OP_LOGIN_REQ = 0x03,
	OP_TEXT_REQ = 0x04,
	OP_DATA_OUT = 0x05,
	OP_LOGOUT_REQ = 0x06,
	OP_SNACK_REQ = 0x10,
};
/* Opcodes (target -> initiator). */
enum {
	OP_NOP_IN = 0x20,
	OP_SCSI_RSP = 0x21,
	OP_TMF_RSP = 0x22,
	OP_LOGIN_RSP = 0x23,
	OP_TEXT_RSP = 0x24,
	OP_DATA_IN = 0x25,
	OP_LOGOUT_RSP = 0x26,
	OP_R2T = 0x31,
	OP_ASYNC = 0x32,
	OP_REJECT = 0x3f,
};

enum { BHS_LEN = 48, MAX_RX_DATA = 32 << 20, RSV_ITT = 0xffffffffu };

/* What the target said in one PDU. */
struct rx {
	uint8_t bhs[BHS_LEN];
	uint8_t *data;   /* data segment (owned by the conn's rx buffer) */
	uint32_t dlen;   /* data segment length */
};

/* One connection (one session: MaxConnections=1). */
struct conn {
	int fd;
	uint32_t itt;         /* next initiator task tag */
	uint32_t cmdsn;       /* next CmdSN */
	uint32_t expstatsn;   /* next StatSN we expect */
	uint32_t maxcmdsn;    /* target's window end */
	uint32_t tx_max;      /* target's MaxRecvDataSegmentLength */
	uint8_t *rxbuf;       /* data segment buffer */
	size_t rxcap;
	uint8_t isid[6];
	uint16_t tsih;
	bool broken;          /* we broke the framing: close, do not ping */
};

/* Per-process state and tallies. */
static struct {
	const char *host, *iqn;
	int port, connections, seconds;
	unsigned lun;         /* the disk LUN to aim at (default 0) */
	bool verbose;         /* HOSTILE_VERBOSE set: one line per round */
	uint64_t seed;
	uint64_t nblocks;     /* LUN 0 capacity in blocks, from READ CAPACITY */
	uint32_t blksz;
	struct timespec start;
	long pdus, conns, drops, rejects, timeouts_random, checks, failures;
} g = { .host = "127.0.0.1", .connections = 200, .seconds = 60, .blksz = 512 };

static uint64_t rng_state;

/* xorshift64*: reproducible from --seed. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static void rnd_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static double elapsed(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - g.start.tv_sec) + (double)(now.tv_nsec - g.start.tv_nsec) / 1e9;
}

/* A check that did not hold: counted, and the first ones printed. */
static void failf(const char *fmt, ...)
{
	va_list ap;
	g.failures++;
	if (g.failures > 20)
		return;
	fprintf(stderr, "hostile[%d]: CHECK FAILED: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put24(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)((unsigned)p[0] << 8 | p[1]); }
static uint32_t get24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* Serial number comparison (RFC 1982, 32 bits): a < b. */
static bool sn_lt(uint32_t a, uint32_t b) { return a != b && (int32_t)(a - b) < 0; }

static int conn_open(struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", g.port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	if (getaddrinfo(g.host, portstr, &hints, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->itt = 0x1000 + rnd_below(0x1000);
	/* Any initial CmdSN is valid; some sessions start just below the wrap. */
	c->cmdsn = rnd_below(8) ? (uint32_t)rnd() : 0xffffffffu - rnd_below(40);
	c->maxcmdsn = c->cmdsn;
	c->tx_max = 8192;
	c->isid[0] = 0x80;
	rnd_fill(c->isid + 1, 5);
	g.conns++;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rxbuf);
	c->rxbuf = NULL;
	c->rxcap = 0;
}

/* Send all of buf; false if the target closed the connection. */
static bool send_all(struct conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Send one PDU: BHS (with the data segment length set here), AHS and data,
 * each padded to 4 bytes. */
static bool send_pdu(struct conn *c, uint8_t *bhs, const uint8_t *ahs, size_t ahslen,
		     const uint8_t *data, size_t dlen)
{
	static const uint8_t pad[4];
	bhs[4] = (uint8_t)((ahslen + 3) / 4);
	put24(bhs + 5, (uint32_t)dlen);
	g.pdus++;
	if (!send_all(c, bhs, BHS_LEN))
		return false;
	if (ahslen && (!send_all(c, ahs, ahslen) || !send_all(c, pad, (4 - ahslen % 4) % 4)))
		return false;
	if (dlen && (!send_all(c, data, dlen) || !send_all(c, pad, (4 - dlen % 4) % 4)))
		return false;
	return true;
}

/* Read exactly len bytes before the deadline; 1 done, 0 closed, -1 timeout. */
static int recv_exact(struct conn *c, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	while (len > 0) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -1;
		ssize_t n = recv(c->fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Receive one PDU. 1 got one, 0 closed, -1 timeout, -2 target framing error. */
static int recv_pdu(struct conn *c, struct rx *rx, int timeout_ms)
{
	int r = recv_exact(c, rx->bhs, BHS_LEN, timeout_ms);
	if (r <= 0)
		return r;
	size_t ahs = (size_t)rx->bhs[4] * 4;
	uint32_t dlen = get24(rx->bhs + 5);
	size_t total = ahs + ((size_t)dlen + 3) / 4 * 4;
	if (dlen > MAX_RX_DATA) {
		failf("target sent a PDU (opcode 0x%02x) with DataSegmentLength %u", rx->bhs[0] & 0x3f, dlen);
		return -2;
	}
	if (total > c->rxcap) {
		uint8_t *nb = realloc(c->rxbuf, total);
		if (!nb) {
			perror("hostile: realloc");
			exit(2);
		}
		c->rxbuf = nb;
		c->rxcap = total;
	}
	if (total) {
		r = recv_exact(c, c->rxbuf, total, timeout_ms);
		if (r <= 0)
			return r;
	}
	rx->data = c->rxbuf + ahs;
	rx->dlen = dlen;
	return 1;
}

/* Track StatSN/ExpCmdSN/MaxCmdSN from a target PDU. */
static void note_sn(struct conn *c, const struct rx *rx)
{
	uint8_t op = rx->bhs[0] & 0x3f;
	bool has_statsn = op == OP_NOP_IN || op == OP_SCSI_RSP || op == OP_TMF_RSP ||
			  op == OP_TEXT_RSP || op == OP_LOGOUT_RSP || op == OP_REJECT ||
			  op == OP_ASYNC || op == OP_LOGIN_RSP ||
			  (op == OP_DATA_IN && (rx->bhs[1] & 0x01));
	if (has_statsn && !(op == OP_NOP_IN && get32(rx->bhs + 16) == RSV_ITT)) {
		uint32_t statsn = get32(rx->bhs + 24);
		if (!sn_lt(statsn + 1, c->expstatsn))
			c->expstatsn = statsn + 1;
	}
	{
		uint32_t maxcmdsn = get32(rx->bhs + 32);
		uint32_t expcmdsn = get32(rx->bhs + 28);
		/* MaxCmdSN < ExpCmdSN - 1 means "ignore" (RFC 7143 4.2.2.1). */
		if (!sn_lt(maxcmdsn, expcmdsn - 1) && sn_lt(c->maxcmdsn, maxcmdsn))
			c->maxcmdsn = maxcmdsn;
	}
}

/* Answer a target's NOP-In ping (TTT != 0xffffffff). */
static void answer_target_ping(struct conn *c, const struct rx *rx)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = 0x40 | OP_NOP_OUT;
	bhs[1] = 0x80;
	memcpy(bhs + 8, rx->bhs + 8, 8);
	put32(bhs + 16, RSV_ITT);
	memcpy(bhs + 20, rx->bhs + 20, 4);
	put32(bhs + 24, c->cmdsn);
	put32(bhs + 28, c->expstatsn);
	send_pdu(c, bhs, NULL, 0, NULL, 0);
}

/* A task we wait for: its ITT and, for writes, the bytes the target may solicit. */
struct task {
	uint32_t itt;
	uint8_t lun[8];
	uint32_t edtl;
	size_t datain;        /* Data-In bytes received */
	bool write;
};

/* Answer an R2T for our write task with zero data, in PDUs of at most tx_max. */
static bool answer_r2t(struct conn *c, struct task *t, const struct rx *rx)
{
	uint32_t ttt = get32(rx->bhs + 20);
	uint32_t off = get32(rx->bhs + 40);
	uint32_t len = get32(rx->bhs + 44);
	if (len > 16u << 20) {
		failf("target solicited %u bytes in one R2T (more than any sane MaxBurstLength)", len);
		return false;
	}
	static uint8_t zeros[65536];
	uint32_t sn = 0;
	while (len > 0) {
		uint32_t n = len < c->tx_max ? len : c->tx_max;
		if (n > sizeof zeros)
			n = sizeof zeros;
		uint8_t bhs[BHS_LEN] = { 0 };
		bhs[0] = OP_DATA_OUT;
		bhs[1] = n == len ? 0x80 : 0;
		memcpy(bhs + 8, t->lun, 8);
		put32(bhs + 16, t->itt);
		put32(bhs + 20, ttt);
		put32(bhs + 28, c->expstatsn);
		put32(bhs + 36, sn++);
		put32(bhs + 40, off);
		if (!send_pdu(c, bhs, NULL, 0, zeros, n))
			return false;
		off += n;
		len -= n;
	}
	return true;
}

/* Outcome of waiting for a response. */
enum wait_result { W_GOT, W_CLOSED, W_TIMEOUT, W_REJECTED };

/* Wait for the PDU of opcode `want` carrying ITT itt; meanwhile answer pings and
 * R2Ts for t, count Data-In for t, and drain everything else. A Reject quoting
 * our ITT ends the wait with W_REJECTED. */
static enum wait_result wait_for(struct conn *c, uint32_t itt, uint8_t want, struct task *t,
				 struct rx *out, int timeout_ms)
{
	for (;;) {
		struct rx rx;
		int r = recv_pdu(c, &rx, timeout_ms);
		if (r == 0 || r == -2)
			return W_CLOSED;
		if (r < 0)
			return W_TIMEOUT;
		uint8_t op = rx.bhs[0] & 0x3f;
		note_sn(c, &rx);
		uint32_t ritt = get32(rx.bhs + 16);
		if (op == OP_NOP_IN && ritt == RSV_ITT) {
			if (get32(rx.bhs + 20) != RSV_ITT)
				answer_target_ping(c, &rx);
			continue;
		}
		if (op == OP_REJECT) {
			g.rejects++;
			if (rx.dlen >= BHS_LEN && get32(rx.data + 16) == itt) {
				*out = rx;
				return W_REJECTED;
			}
			continue;
		}
		if (t && ritt == t->itt && op == OP_R2T) {
			if (!t->write)
				failf("target sent R2T for a read task (ITT 0x%08x)", t->itt);
			else if (!answer_r2t(c, t, &rx))
				return W_CLOSED;
			continue;
		}
		if (t && ritt == t->itt && op == OP_DATA_IN) {
			t->datain += rx.dlen;
			if (t->datain > t->edtl)
				failf("target sent %zu Data-In bytes for a task whose expected length is %u",
				      t->datain, t->edtl);
			if ((rx.bhs[1] & 0x01) && want == OP_SCSI_RSP) {
				*out = rx; /* status in the last Data-In */
				return W_GOT;
			}
			continue;
		}
		if (op == want && ritt == itt) {
			*out = rx;
			return W_GOT;
		}
	}
}

/* Result of one SCSI command. */
struct scsi_result {
	enum wait_result how;
	uint8_t status;       /* SCSI status */
	uint8_t key, asc, ascq;
	uint8_t response;     /* iSCSI response code */
	uint8_t data[64];     /* first Data-In bytes, for READ CAPACITY */
	size_t datain;
};

/* Sense key/ASC/ASCQ from sense data (fixed or descriptor format). */
static void parse_sense(const uint8_t *s, size_t n, struct scsi_result *res)
{
	if (n < 2)
		return;
	uint8_t code = s[0] & 0x7f;
	if ((code == 0x70 || code == 0x71) && n >= 14) {
		res->key = s[2] & 0x0f;
		res->asc = s[12];
		res->ascq = s[13];
	} else if ((code == 0x72 || code == 0x73) && n >= 4) {
		res->key = s[1] & 0x0f;
		res->asc = s[2];
		res->ascq = s[3];
	}
}

static void lun_bytes(uint8_t *lun, unsigned n)
{
	memset(lun, 0, 8);
	if (n < 256) {
		lun[1] = (uint8_t)n;
	} else {
		lun[0] = (uint8_t)(0x40 | ((n >> 8) & 0x3f));
		lun[1] = (uint8_t)n;
	}
}

/* Send one SCSI command and wait for its status. cmdsn_delta != 0 sends it
 * outside the window on purpose (then no answer is awaited). */
static struct scsi_result scsi_cmd(struct conn *c, unsigned lun, const uint8_t *cdb, size_t cdblen,
				   uint32_t edtl, bool read, bool write, int timeout_ms)
{
	struct scsi_result res = { .how = W_CLOSED };
	struct task t = { .itt = c->itt++, .edtl = edtl, .write = write };
	lun_bytes(t.lun, lun);
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = OP_SCSI_CMD;
	bhs[1] = (uint8_t)(0x80 | (read ? 0x40 : 0) | (write ? 0x20 : 0) | 0x01);
	memcpy(bhs + 8, t.lun, 8);
	put32(bhs + 16, t.itt);
	put32(bhs + 20, edtl);
	put32(bhs + 24, c->cmdsn);
	put32(bhs + 28, c->expstatsn);
	memcpy(bhs + 32, cdb, cdblen > 16 ? 16 : cdblen);
	/* Respect the command window (wait a little for it to open). */
	for (int i = 0; i < 50 && sn_lt(c->maxcmdsn, c->cmdsn); i++) {
		struct rx rx;
		int r = recv_pdu(c, &rx, 100);
		if (r == 0 || r == -2)
			return res;
		if (r > 0)
			note_sn(c, &rx);
	}
	c->cmdsn++;
	if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
		return res;
	struct rx rx;
	res.how = wait_for(c, t.itt, OP_SCSI_RSP, &t, &rx, timeout_ms);
	res.datain = t.datain;
	if (res.how != W_GOT)
		return res;
	if ((rx.bhs[0] & 0x3f) == OP_DATA_IN) {
		res.status = rx.bhs[3];
		res.response = 0;
	} else {
		res.response = rx.bhs[2];
		res.status = rx.bhs[3];
		if (res.status == 0x02 && rx.dlen >= 2) {
			size_t sl = get16(rx.data);
			if (sl > rx.dlen - 2)
				sl = rx.dlen - 2;
			parse_sense(rx.data + 2, sl, &res);
		}
	}
	return res;
}

/* As scsi_cmd, but retry a few times over UNIT ATTENTION. */
static struct scsi_result scsi_cmd_ua(struct conn *c, unsigned lun, const uint8_t *cdb, size_t cdblen,
				      uint32_t edtl, bool read, bool write)
{
	struct scsi_result r;
	for (int i = 0; i < 4; i++) {
		r = scsi_cmd(c, lun, cdb, cdblen, edtl, read, write, 20000);
		if (!(r.how == W_GOT && r.status == 0x02 && r.key == 0x06))
			break;
	}
	return r;
}

/* Append "key=value\0" to a text buffer. */
static size_t kv(uint8_t *buf, size_t off, size_t cap, const char *key, const char *val)
{
	int n = snprintf((char *)buf + off, cap - off, "%s=%s", key, val);
	if (n < 0 || (size_t)n + 1 > cap - off)
		return off;
	return off + (size_t)n + 1;
}

/* Find key's value in a text data segment (into val). */
static bool text_get(const uint8_t *data, size_t len, const char *key, char *val, size_t vcap)
{
	size_t klen = strlen(key);
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && data[j])
			j++;
		if (j - i > klen && memcmp(data + i, key, klen) == 0 && data[i + klen] == '=') {
			size_t vl = j - i - klen - 1;
			if (vl >= vcap)
				vl = vcap - 1;
			memcpy(val, data + i + klen + 1, vl);
			val[vl] = 0;
			return true;
		}
		i = j + 1;
	}
	return false;
}

/* Send one Login Request; returns the response (W_GOT) in *out. */
static enum wait_result login_pdu(struct conn *c, int csg, int nsg, bool transit, uint8_t vmax,
				  uint8_t vmin, const uint8_t *data, size_t dlen, struct rx *out)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = 0x40 | OP_LOGIN_REQ;
	bhs[1] = (uint8_t)((transit ? 0x80 : 0) | (csg << 2) | (transit ? nsg : 0));
	bhs[2] = vmax;
	bhs[3] = vmin;
	memcpy(bhs + 8, c->isid, 6);
	put16(bhs + 14, c->tsih);
	put32(bhs + 16, c->itt);
	put16(bhs + 20, 0);
	put32(bhs + 24, c->cmdsn);
	put32(bhs + 28, c->expstatsn);
	if (!send_pdu(c, bhs, NULL, 0, data, dlen))
		return W_CLOSED;
	for (;;) {
		int r = recv_pdu(c, out, 10000);
		if (r == 0 || r == -2)
			return W_CLOSED;
		if (r < 0)
			return W_TIMEOUT;
		uint8_t op = out->bhs[0] & 0x3f;
		if (op == OP_LOGIN_RSP)
			break;
		if (op == OP_REJECT) {
			g.rejects++;
			return W_REJECTED;
		}
		failf("target answered a Login Request with opcode 0x%02x", op);
		return W_CLOSED;
	}
	c->tsih = get16(out->bhs + 14);
	c->expstatsn = get32(out->bhs + 24) + 1;
	c->maxcmdsn = get32(out->bhs + 32);
	if (out->bhs[36] == 0 && sn_lt(c->maxcmdsn, get32(out->bhs + 28) - 1))
		failf("Login Response gives MaxCmdSN %u below ExpCmdSN %u - 1 (CmdSN sent: %u)", c->maxcmdsn,
		      get32(out->bhs + 28), c->cmdsn);
	return W_GOT;
}

static const char initiator_name[] = "iqn.2025-10.org.lungate.test:hostile";

/* Full login to a normal or discovery session. skip_security starts in the
 * operational stage (allowed when the target asks for no authentication).
 * Returns true when in full feature phase; on failure sets *why. */
static bool login(struct conn *c, bool discovery, bool skip_security, const char **why)
{
	uint8_t buf[2048];
	size_t n = 0;
	struct rx rx;
	*why = NULL;
	int stage = skip_security ? 1 : 0;
	bool first = true;
	for (int step = 0; step < 6; step++) {
		n = 0;
		if (first) {
			n = kv(buf, n, sizeof buf, "InitiatorName", initiator_name);
			n = kv(buf, n, sizeof buf, "SessionType", discovery ? "Discovery" : "Normal");
			if (!discovery)
				n = kv(buf, n, sizeof buf, "TargetName", g.iqn);
		}
		if (stage == 0) {
			n = kv(buf, n, sizeof buf, "AuthMethod", "None");
		} else {
			n = kv(buf, n, sizeof buf, "HeaderDigest", "None");
			n = kv(buf, n, sizeof buf, "DataDigest", "None");
			n = kv(buf, n, sizeof buf, "MaxRecvDataSegmentLength", "262144");
			n = kv(buf, n, sizeof buf, "DefaultTime2Wait", "0");
			n = kv(buf, n, sizeof buf, "DefaultTime2Retain", "0");
			n = kv(buf, n, sizeof buf, "ErrorRecoveryLevel", "0");
			if (!discovery) {
				n = kv(buf, n, sizeof buf, "InitialR2T", "Yes");
				n = kv(buf, n, sizeof buf, "ImmediateData", "No");
				n = kv(buf, n, sizeof buf, "MaxBurstLength", "262144");
				n = kv(buf, n, sizeof buf, "FirstBurstLength", "65536");
				n = kv(buf, n, sizeof buf, "MaxOutstandingR2T", "1");
				n = kv(buf, n, sizeof buf, "MaxConnections", "1");
				n = kv(buf, n, sizeof buf, "DataPDUInOrder", "Yes");
				n = kv(buf, n, sizeof buf, "DataSequenceInOrder", "Yes");
			}
		}
		first = false;
		enum wait_result w = login_pdu(c, stage, stage == 0 ? 1 : 3, true, 0, 0, buf, n, &rx);
		if (w != W_GOT) {
			*why = w == W_TIMEOUT ? "no Login Response within 10 s" :
			       w == W_REJECTED ? "Login Request rejected" : "connection closed during login";
			return false;
		}
		uint8_t sclass = rx.bhs[36], sdetail = rx.bhs[37];
		if (sclass != 0) {
			static char msg[96];
			snprintf(msg, sizeof msg, "login status 0x%02x%02x", sclass, sdetail);
			*why = msg;
			return false;
		}
		char val[64];
		if (text_get(rx.data, rx.dlen, "MaxRecvDataSegmentLength", val, sizeof val)) {
			long v = strtol(val, NULL, 10);
			if (v >= 512 && v <= (16 << 20))
				c->tx_max = (uint32_t)v;
		}
		bool transit = rx.bhs[1] & 0x80;
		int nsg = rx.bhs[1] & 0x03;
		if (transit && nsg == 3)
			return true;
		if (transit && nsg == 1)
			stage = 1;
	}
	*why = "login did not reach full feature phase in 6 exchanges";
	return false;
}

/* NOP-Out ping with random data; require the echo. false if the conn is gone. */
static bool ping(struct conn *c, bool strict)
{
	uint8_t data[1024];
	size_t dlen = 1 + rnd_below(sizeof data);
	if (dlen > c->tx_max)
		dlen = c->tx_max;
	rnd_fill(data, dlen);
	uint32_t itt = c->itt++;
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = 0x40 | OP_NOP_OUT;
	bhs[1] = 0x80;
	put32(bhs + 16, itt);
	put32(bhs + 20, RSV_ITT);
	put32(bhs + 24, c->cmdsn);
	put32(bhs + 28, c->expstatsn);
	if (!send_pdu(c, bhs, NULL, 0, data, dlen)) {
		g.drops++;
		return false;
	}
	struct rx rx;
	enum wait_result w = wait_for(c, itt, OP_NOP_IN, NULL, &rx, 20000);
	if (w == W_GOT) {
		if (rx.dlen != dlen || memcmp(rx.data, data, dlen) != 0)
			failf("NOP-In echoed %u bytes that differ from the %zu bytes pinged", rx.dlen, dlen);
		/* After rounds whose commands all reached the target, its ExpCmdSN is
		 * our next CmdSN: commands outside the window were not run. */
		if (strict && get32(rx.bhs + 28) != c->cmdsn) {
			failf("NOP-In says ExpCmdSN %u, but the next CmdSN is %u (a command outside the "
			      "window was run, or one inside it was lost)", get32(rx.bhs + 28), c->cmdsn);
			return false; /* later commands would be lost too */
		}
		if (sn_lt(get32(rx.bhs + 32), get32(rx.bhs + 28) - 1))
			failf("NOP-In gives MaxCmdSN %u below ExpCmdSN %u - 1: the command window is "
			      "negative", get32(rx.bhs + 32), get32(rx.bhs + 28));
		g.checks++;
		return true;
	}
	if (w == W_CLOSED || w == W_REJECTED) {
		g.drops++;
		return false;
	}
	if (strict)
		failf("connection neither answered a NOP-Out ping nor closed within 20 s");
	else
		g.timeouts_random++;
	return false;
}

/* Opcodes that could change the medium, the LUN's state or reservations:
 * never sent with a random CDB. */
static bool cdb_may_modify(uint8_t op)
{
	static const uint8_t bad[] = {
		0x04, 0x07, 0x0a, 0x0b, 0x10, 0x15, 0x16, 0x17, 0x1b, 0x1d, 0x24, 0x2a, 0x2c,
		0x2e, 0x31, 0x38, 0x39, 0x3b, 0x3d, 0x3f, 0x41, 0x42, 0x44, 0x48, 0x4c,
		0x51, 0x53, 0x54, 0x55, 0x56, 0x57, 0x5f, 0x7f, 0x83, 0x89, 0x8a, 0x8b, 0x8c,
		0x8d, 0x8e, 0x92, 0x93, 0x94, 0x9d, 0x9f, 0xa4, 0xa5, 0xa7, 0xaa, 0xac,
		0xae, 0xb1, 0xb6, 0xbe, 0xbf, 0xc0, 0xc1, 0xea,
	};
	for (size_t i = 0; i < sizeof bad; i++)
		if (bad[i] == op)
			return true;
	return false;
}

static void random_safe_cdb(uint8_t *cdb)
{
	static const uint8_t common[] = { 0x00, 0x03, 0x08, 0x12, 0x1a, 0x1e, 0x25, 0x28, 0x2f,
					  0x35, 0x5a, 0x88, 0x8f, 0x9e, 0xa0, 0xa3, 0xa8, 0xaf };
	rnd_fill(cdb, 16);
	if (rnd_below(2))
		cdb[0] = common[rnd_below(sizeof common)];
	while (cdb_may_modify(cdb[0]))
		cdb[0] = (uint8_t)rnd();
}

static void expect_sense(struct conn *c, const char *what, struct scsi_result r, uint8_t key, uint8_t asc,
			 uint8_t alt_asc)
{
	if (r.how == W_CLOSED || r.how == W_REJECTED)
		return; /* dropping or rejecting is allowed; the ping tells the rest */
	if (r.how == W_TIMEOUT) {
		failf("%s: no SCSI Response within 20 s", what);
		c->broken = true; /* a wedged session: do not spend more time on it */
		return;
	}
	g.checks++;
	if (r.response != 0 || r.status != 0x02 || r.key != key || (r.asc != asc && r.asc != alt_asc))
		failf("%s: got response 0x%02x status 0x%02x sense %x/%02x/%02x, want CHECK CONDITION %x/%02x",
		      what, r.response, r.status, r.key, r.asc, r.ascq, key, asc);
}

/* READ CAPACITY(16) of LUN 0 into g.nblocks/g.blksz. */
static bool read_capacity(struct conn *c)
{
	uint8_t cdb[16] = { 0x9e, 0x10 };
	put32(cdb + 10, 32);
	/* scsi_cmd does not keep data; read it here by hand. */
	uint32_t itt = c->itt++;
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = OP_SCSI_CMD;
	bhs[1] = 0x80 | 0x40 | 0x01;
	lun_bytes(bhs + 8, g.lun);
	put32(bhs + 16, itt);
	put32(bhs + 20, 32);
	put32(bhs + 24, c->cmdsn++);
	put32(bhs + 28, c->expstatsn);
	memcpy(bhs + 32, cdb, 16);
	if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
		return false;
	uint8_t data[32] = { 0 };
	size_t got = 0;
	for (;;) {
		struct rx rx;
		if (recv_pdu(c, &rx, 20000) != 1)
			return false;
		note_sn(c, &rx);
		uint8_t op = rx.bhs[0] & 0x3f;
		if (get32(rx.bhs + 16) != itt)
			continue;
		if (op == OP_DATA_IN) {
			uint32_t off = get32(rx.bhs + 40);
			for (uint32_t i = 0; i < rx.dlen && off + i < sizeof data; i++)
				data[off + i] = rx.data[i];
			got += rx.dlen;
			if (rx.bhs[1] & 0x01) {
				if (rx.bhs[3] != 0)
					return false;
				break;
			}
		} else if (op == OP_SCSI_RSP) {
			if (rx.bhs[3] != 0)
				return false;
			break;
		} else {
			return false;
		}
	}
	if (got < 12)
		return false;
	g.nblocks = get64(data) + 1;
	g.blksz = get32(data + 8);
	return g.blksz >= 512 && g.blksz <= 65536;
}

/* Kinds of hostile rounds in full feature phase. */
enum kind {
	K_RANDOM_BHS, K_RANDOM_AHS, K_HUGE_DSL, K_BAD_AHS_LEN, K_TRUNCATED, K_GARBAGE,
	K_OOR_READ, K_OOR_WRITE, K_ABSURD_LEN, K_BAD_EDTL, K_RANDOM_CDB, K_NO_SUCH_LUN,
	K_DATAOUT_UNKNOWN, K_CMDSN_WINDOW, K_TMF, K_TEXT_GARBAGE, K_SNACK, K_PIPELINE,
	K_COUNT
};

/* One round of kind k. Returns false when the connection is finished. */
static bool hostile_round(struct conn *c, enum kind k)
{
	uint8_t bhs[BHS_LEN];
	uint8_t data[8192];
	uint8_t cdb[16];
	char what[160];
	uint64_t nb = g.nblocks;

	switch (k) {
	case K_RANDOM_BHS:
	case K_RANDOM_AHS: {
		rnd_fill(bhs, BHS_LEN);
		uint8_t op = (uint8_t)rnd_below(0x40);
		bhs[0] = (uint8_t)((rnd_below(2) ? 0x40 : 0) | op);
		if (op == OP_SCSI_CMD) {
			random_safe_cdb(bhs + 32);
			bhs[1] &= (uint8_t)~0x20; /* no write flag: nothing may land */
		}
		/* No task management function that reaches past this session (ABORT TASK
		 * SET to TASK REASSIGN: the resets, above all): it is a valid request, and
		 * the target rightly aborts the other processes' commands (TASK ABORTED)
		 * or, for a cold reset, closes their sessions, which their checks would
		 * count as failures.  ABORT TASK or an unknown function, as K_TMF (the
		 * resets have their tests in the compliance suite: Reserve6.Target*Reset). */
		if (op == OP_TMF_REQ) {
			uint8_t fn = rnd_below(2) ? 1 : (uint8_t)(9 + rnd_below(0x80 - 9));
			bhs[1] = (uint8_t)((bhs[1] & 0x80) | fn);
		}
		size_t ahslen = 0;
		uint8_t ahs[16];
		if (k == K_RANDOM_AHS) {
			ahslen = 4 * (1 + rnd_below(4));
			rnd_fill(ahs, ahslen);
			if (rnd_below(2))
				put16(ahs, (uint16_t)rnd_below(0x10000)); /* AHSLength that lies */
		}
		size_t dlen = rnd_below(4) ? rnd_below(1024) : rnd_below(sizeof data);
		rnd_fill(data, dlen);
		if (!send_pdu(c, bhs, ahs, ahslen, data, dlen))
			return false;
		/* Whatever that PDU started (a logout, a task waiting for data, a command
		 * queued at a random CmdSN) may legitimately end or stall this session
		 * later: check the answer to the ping, then hang up. */
		ping(c, false);
		return false;
	}
	case K_HUGE_DSL: {
		/* A NOP-Out or SCSI Command claiming 16 MiB of data, then part of it. */
		memset(bhs, 0, sizeof bhs);
		bhs[0] = rnd_below(2) ? (0x40 | OP_NOP_OUT) : OP_SCSI_CMD;
		bhs[1] = 0x80;
		put32(bhs + 16, c->itt++);
		put32(bhs + 20, RSV_ITT);
		put32(bhs + 24, c->cmdsn);
		put32(bhs + 28, c->expstatsn);
		if ((bhs[0] & 0x3f) == OP_SCSI_CMD) {
			bhs[1] = 0x80 | 0x20 | 0x01;
			put32(bhs + 20, 0x00ffffff);
			bhs[32] = 0x28; /* READ(10) of 0 blocks: harmless even if run */
		}
		g.pdus++;
		bhs[4] = 0;
		put24(bhs + 5, 0x00ffffff);
		if (!send_all(c, bhs, BHS_LEN))
			return false;
		rnd_fill(data, sizeof data);
		for (int i = 0; i < 8; i++)
			if (!send_all(c, data, sizeof data))
				return false;
		c->broken = true;
		return false;
	}
	case K_BAD_AHS_LEN: {
		/* TotalAHSLength of 1020 bytes, only some sent, then the stream goes on. */
		memset(bhs, 0, sizeof bhs);
		bhs[0] = OP_SCSI_CMD;
		bhs[1] = 0x80 | 0x40 | 0x01;
		put32(bhs + 16, c->itt++);
		put32(bhs + 20, 512);
		put32(bhs + 24, c->cmdsn);
		put32(bhs + 28, c->expstatsn);
		bhs[32] = 0x00; /* TEST UNIT READY */
		g.pdus++;
		bhs[4] = 255;
		put24(bhs + 5, 0);
		if (!send_all(c, bhs, BHS_LEN))
			return false;
		rnd_fill(data, 64);
		put16(data, 0xfffc);
		data[2] = 0x01; /* extended CDB AHS */
		send_all(c, data, 64);
		c->broken = true;
		return false;
	}
	case K_TRUNCATED: {
		memset(bhs, 0, sizeof bhs);
		bhs[0] = OP_SCSI_CMD;
		bhs[1] = 0x80 | 0x40 | 0x01;
		put32(bhs + 16, c->itt++);
		put32(bhs + 20, 512);
		put32(bhs + 24, c->cmdsn);
		bhs[32] = 0x28;
		bhs[39] = 1;
		g.pdus++;
		send_all(c, bhs, 1 + rnd_below(BHS_LEN - 1));
		c->broken = true;
		return false;
	}
	case K_GARBAGE: {
		size_t n = 1 + rnd_below(sizeof data);
		rnd_fill(data, n);
		g.pdus++;
		send_all(c, data, n);
		c->broken = true;
		return false;
	}
	case K_OOR_READ: {
		uint64_t lba;
		uint32_t len;
		memset(cdb, 0, sizeof cdb);
		switch (rnd_below(6)) {
		case 0: /* READ(10) just past the end */
			if (nb > 0xffffffffu)
				return true;
			cdb[0] = 0x28;
			put32(cdb + 2, (uint32_t)nb);
			put16(cdb + 7, 1);
			len = 1;
			lba = nb;
			break;
		case 1: /* READ(10) straddling the end */
			cdb[0] = 0x28;
			lba = nb - 1;
			if (lba > 0xffffffffu)
				return true;
			put32(cdb + 2, (uint32_t)lba);
			put16(cdb + 7, 2);
			len = 2;
			break;
		case 2: /* READ(16) at the last possible LBA */
			cdb[0] = 0x88;
			lba = UINT64_MAX;
			put64(cdb + 2, lba);
			put32(cdb + 10, 1);
			len = 1;
			break;
		case 3: /* READ(16) whose end wraps past 2^64 */
			cdb[0] = 0x88;
			lba = UINT64_MAX - 1;
			put64(cdb + 2, lba);
			put32(cdb + 10, 8);
			len = 8;
			break;
		case 4: /* READ(12) far out */
			cdb[0] = 0xa8;
			lba = 0xfffffff0u;
			put32(cdb + 2, (uint32_t)lba);
			put32(cdb + 6, 4);
			len = 4;
			break;
		default: /* READ(6) past the end (21-bit LBA) */
			if (nb >= 0x1fffff)
				return true;
			cdb[0] = 0x08;
			lba = nb;
			cdb[1] = (uint8_t)(lba >> 16) & 0x1f;
			cdb[2] = (uint8_t)(lba >> 8);
			cdb[3] = (uint8_t)lba;
			cdb[4] = 1;
			len = 1;
			break;
		}
		struct scsi_result r = scsi_cmd_ua(c, g.lun, cdb, 16, len * g.blksz, true, false);
		snprintf(what, sizeof what, "READ opcode 0x%02x LBA %" PRIu64 " blocks %u (capacity %" PRIu64 ")",
			 cdb[0], lba, len, nb);
		expect_sense(c, what, r, 0x05, 0x21, 0x21);
		if (r.datain)
			failf("%s: target sent %zu bytes of data for an out-of-range read", what, r.datain);
		break;
	}
	case K_OOR_WRITE: {
		uint64_t lba;
		uint32_t len = 8;
		memset(cdb, 0, sizeof cdb);
		switch (rnd_below(3)) {
		case 0:
			if (nb > 0xffffffffu)
				return true;
			cdb[0] = 0x2a;
			lba = nb;
			put32(cdb + 2, (uint32_t)lba);
			put16(cdb + 7, (uint16_t)len);
			break;
		case 1:
			cdb[0] = 0x8a;
			lba = nb - 4; /* straddles the end: nothing may be written */
			put64(cdb + 2, lba);
			put32(cdb + 10, len);
			break;
		default:
			cdb[0] = 0x8a;
			lba = UINT64_MAX - 3; /* wraps */
			put64(cdb + 2, lba);
			put32(cdb + 10, len);
			break;
		}
		struct scsi_result r = scsi_cmd_ua(c, g.lun, cdb, 16, len * g.blksz, false, true);
		snprintf(what, sizeof what, "WRITE opcode 0x%02x LBA %" PRIu64 " blocks %u (capacity %" PRIu64 ")",
			 cdb[0], lba, len, nb);
		expect_sense(c, what, r, 0x05, 0x21, 0x21);
		break;
	}
	case K_ABSURD_LEN: {
		/* Transfer lengths no LUN can satisfy: out of range, or over the
		 * maximum transfer length (INVALID FIELD IN CDB) — never served. */
		memset(cdb, 0, sizeof cdb);
		uint32_t edtl = rnd_below(2) ? 0xffffffffu : 0x01000000u;
		if (rnd_below(2)) {
			cdb[0] = 0x88;
			put64(cdb + 2, 0);
			put32(cdb + 10, 0xffffffffu);
		} else {
			cdb[0] = 0xa8;
			put32(cdb + 2, 1);
			put32(cdb + 6, 0xfffffff0u);
		}
		struct scsi_result r = scsi_cmd_ua(c, g.lun, cdb, 16, edtl, true, false);
		snprintf(what, sizeof what, "READ opcode 0x%02x of 2^32 blocks, EDTL 0x%08x", cdb[0], edtl);
		expect_sense(c, what, r, 0x05, 0x21, 0x24);
		break;
	}
	case K_BAD_EDTL: {
		/* In-range READ(10) whose expected length disagrees with the CDB. */
		memset(cdb, 0, sizeof cdb);
		cdb[0] = 0x28;
		put32(cdb + 2, rnd_below((uint32_t)(nb > 64 ? nb - 64 : 1)));
		put16(cdb + 7, (uint16_t)(1 + rnd_below(64)));
		uint32_t choices[] = { 0, 1, 511, 0xfffffff0u, 0x7fffffffu };
		uint32_t edtl = choices[rnd_below(5)];
		struct scsi_result r = scsi_cmd(c, g.lun, cdb, 16, edtl, true, false, 20000);
		if (r.how == W_GOT && r.datain > edtl)
			failf("READ(10) with EDTL %u: target sent %zu bytes", edtl, r.datain);
		if (r.how == W_TIMEOUT) {
			failf("READ(10) with EDTL %u: no SCSI Response within 20 s", edtl);
			c->broken = true;
		}
		break;
	}
	case K_RANDOM_CDB: {
		random_safe_cdb(cdb);
		uint32_t edtl = rnd_below(3) ? rnd_below(4096) : rnd_below(1u << 20);
		struct scsi_result r = scsi_cmd(c, rnd_below(4) ? g.lun : rnd_below(300), cdb, 16, edtl,
						rnd_below(2), false, 20000);
		if (r.how == W_TIMEOUT) {
			failf("random CDB opcode 0x%02x: no SCSI Response within 20 s", cdb[0]);
			c->broken = true;
		}
		break;
	}
	case K_NO_SUCH_LUN: {
		memset(cdb, 0, sizeof cdb);
		cdb[0] = 0x28;
		put16(cdb + 7, 1);
		unsigned lun = 100 + rnd_below(150);
		struct scsi_result r = scsi_cmd_ua(c, lun, cdb, 16, g.blksz, true, false);
		snprintf(what, sizeof what, "READ(10) to LUN %u, which does not exist", lun);
		expect_sense(c, what, r, 0x05, 0x25, 0x25);
		break;
	}
	case K_DATAOUT_UNKNOWN: {
		memset(bhs, 0, sizeof bhs);
		bhs[0] = OP_DATA_OUT;
		bhs[1] = rnd_below(2) ? 0x80 : 0;
		put32(bhs + 16, (uint32_t)rnd());
		put32(bhs + 20, (uint32_t)rnd());
		put32(bhs + 28, c->expstatsn);
		put32(bhs + 36, rnd_below(4));
		put32(bhs + 40, rnd_below(2) ? 0 : (uint32_t)rnd());
		size_t dlen = 512 * (1 + rnd_below(8));
		if (dlen > c->tx_max)
			dlen = c->tx_max;
		rnd_fill(data, dlen);
		if (!send_pdu(c, bhs, NULL, 0, data, dlen))
			return false;
		break;
	}
	case K_CMDSN_WINDOW: {
		/* Commands far outside the window must be ignored, not run. */
		memset(bhs, 0, sizeof bhs);
		bhs[0] = OP_SCSI_CMD;
		bhs[1] = 0x80 | 0x01;
		put32(bhs + 16, c->itt++);
		put32(bhs + 24, rnd_below(2) ? c->cmdsn + 0x40000000u : c->cmdsn - 1000);
		put32(bhs + 28, c->expstatsn);
		if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
			return false;
		break;
	}
	case K_TMF: {
		memset(bhs, 0, sizeof bhs);
		uint8_t fn = rnd_below(3) ? 1 : (uint8_t)(9 + rnd_below(100)); /* ABORT TASK or nonsense */
		bhs[0] = 0x40 | OP_TMF_REQ;
		bhs[1] = (uint8_t)(0x80 | (fn & 0x7f));
		uint32_t itt = c->itt++;
		put32(bhs + 16, itt);
		put32(bhs + 20, (uint32_t)rnd()); /* RTT of no task */
		put32(bhs + 24, c->cmdsn);
		put32(bhs + 28, c->expstatsn);
		put32(bhs + 32, c->cmdsn - 7);
		if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
			return false;
		struct rx rx;
		enum wait_result w = wait_for(c, itt, OP_TMF_RSP, NULL, &rx, 20000);
		if (w == W_TIMEOUT) {
			failf("task management function %u: no response within 20 s", fn);
			c->broken = true;
		}
		if (w == W_GOT) {
			g.checks++;
			uint8_t resp = rx.bhs[2];
			if (fn == 1 && resp != 0 && resp != 1)
				failf("ABORT TASK of an unknown task: response %u (want 0 or 1)", resp);
			if (fn != 1 && resp != 5 && resp != 255)
				failf("task management function %u: response %u (want 5 or 255)", fn, resp);
		}
		break;
	}
	case K_TEXT_GARBAGE: {
		memset(bhs, 0, sizeof bhs);
		bhs[0] = 0x40 | OP_TEXT_REQ;
		bhs[1] = 0x80;
		uint32_t itt = c->itt++;
		put32(bhs + 16, itt);
		put32(bhs + 20, RSV_ITT);
		put32(bhs + 24, c->cmdsn);
		put32(bhs + 28, c->expstatsn);
		size_t dlen;
		switch (rnd_below(4)) {
		case 0: /* no '=' and no NUL */
			dlen = 1 + rnd_below(4000);
			memset(data, 'k', dlen);
			break;
		case 1: /* an overlong key */
			dlen = 4000;
			memset(data, 'K', dlen);
			data[3000] = '=';
			data[dlen - 1] = 0;
			break;
		case 2: /* random bytes */
			dlen = 1 + rnd_below(2000);
			rnd_fill(data, dlen);
			break;
		default: /* keys that are not negotiable in full feature phase */
			dlen = 0;
			dlen = kv(data, dlen, sizeof data, "MaxConnections", "999999999999999999999");
			dlen = kv(data, dlen, sizeof data, "HeaderDigest", "CRC32C,,,,");
			dlen = kv(data, dlen, sizeof data, "SendTargets", "iqn.nope");
			break;
		}
		if (dlen > c->tx_max)
			dlen = c->tx_max;
		if (!send_pdu(c, bhs, NULL, 0, data, dlen))
			return false;
		struct rx rx;
		enum wait_result w = wait_for(c, itt, OP_TEXT_RSP, NULL, &rx, 20000);
		if (w == W_TIMEOUT) {
			failf("garbage Text Request: neither response, Reject nor close within 20 s");
			c->broken = true;
		}
		break;
	}
	case K_SNACK: {
		memset(bhs, 0, sizeof bhs);
		bhs[0] = OP_SNACK_REQ;
		bhs[1] = (uint8_t)(0x80 | rnd_below(4));
		put32(bhs + 16, (uint32_t)rnd());
		put32(bhs + 28, c->expstatsn);
		put32(bhs + 40, rnd_below(100));
		put32(bhs + 44, rnd_below(100));
		if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
			return false;
		break;
	}
	case K_PIPELINE: {
		/* Many TEST UNIT READY at once within the window: all must complete. */
		int want = 8 + (int)rnd_below(56);
		uint32_t first = c->itt;
		int sent = 0;
		for (; sent < want && !sn_lt(c->maxcmdsn, c->cmdsn); sent++) {
			memset(bhs, 0, sizeof bhs);
			bhs[0] = OP_SCSI_CMD;
			bhs[1] = 0x80 | 0x01;
			lun_bytes(bhs + 8, g.lun);
			put32(bhs + 16, c->itt++);
			put32(bhs + 24, c->cmdsn++);
			put32(bhs + 28, c->expstatsn);
			if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
				return false;
		}
		int got = 0;
		while (got < sent) {
			struct rx rx;
			int r = recv_pdu(c, &rx, 20000);
			if (r == 0 || r == -2) {
				failf("pipelined TEST UNIT READY: connection closed after %d of %d responses", got, sent);
				return false;
			}
			if (r < 0) {
				failf("pipelined TEST UNIT READY: only %d of %d responses within 20 s", got, sent);
				return false;
			}
			note_sn(c, &rx);
			uint8_t op = rx.bhs[0] & 0x3f;
			uint32_t itt = get32(rx.bhs + 16);
			if (op == OP_NOP_IN && itt == RSV_ITT && get32(rx.bhs + 20) != RSV_ITT)
				answer_target_ping(c, &rx);
			if (op == OP_SCSI_RSP && itt - first < (uint32_t)sent) {
				got++;
				g.checks++;
				if (rx.bhs[3] != 0 && rx.bhs[3] != 0x02)
					failf("pipelined TEST UNIT READY: status 0x%02x", rx.bhs[3]);
			}
		}
		break;
	}
	default:
		break;
	}
	if (c->broken)
		return false;
	return ping(c, true);
}

/* Logout (close session) and require the Logout Response. */
static void logout(struct conn *c)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	bhs[0] = 0x40 | OP_LOGOUT_REQ;
	bhs[1] = 0x80;
	uint32_t itt = c->itt++;
	put32(bhs + 16, itt);
	put32(bhs + 24, c->cmdsn);
	put32(bhs + 28, c->expstatsn);
	if (!send_pdu(c, bhs, NULL, 0, NULL, 0))
		return;
	struct rx rx;
	enum wait_result w = wait_for(c, itt, OP_LOGOUT_RSP, NULL, &rx, 20000);
	if (w == W_TIMEOUT)
		failf("no Logout Response within 20 s");
	else if (w == W_GOT) {
		g.checks++;
		if (rx.bhs[2] != 0)
			failf("Logout Response code %u (want 0)", rx.bhs[2]);
	}
}

/* A connection that never logs in properly. */
static void prelogin_connection(void)
{
	struct conn c;
	if (conn_open(&c) != 0) {
		failf("cannot connect to %s:%d", g.host, g.port);
		return;
	}
	uint8_t buf[8192];
	size_t n = 0;
	struct rx rx;
	unsigned which = rnd_below(9);
	switch (which) {
	case 0: { /* random bytes */
		size_t len = 1 + rnd_below(600);
		rnd_fill(buf, len);
		g.pdus++;
		send_all(&c, buf, len);
		break;
	}
	case 1: { /* a SCSI READ before login: must not be served */
		uint8_t bhs[BHS_LEN] = { 0 };
		bhs[0] = OP_SCSI_CMD;
		bhs[1] = 0x80 | 0x40 | 0x01;
		put32(bhs + 16, 1);
		put32(bhs + 20, 4096);
		bhs[32] = 0x28;
		bhs[39] = 8;
		if (!send_pdu(&c, bhs, NULL, 0, NULL, 0))
			break;
		for (;;) {
			int r = recv_pdu(&c, &rx, 3000);
			if (r != 1)
				break;
			uint8_t op = rx.bhs[0] & 0x3f;
			if (op == OP_DATA_IN || (op == OP_SCSI_RSP && rx.bhs[3] == 0)) {
				failf("target served a SCSI READ sent before login (opcode 0x%02x back)", op);
				break;
			}
		}
		g.checks++;
		break;
	}
	case 2: { /* unknown TargetName: status class 2 */
		n = kv(buf, n, sizeof buf, "InitiatorName", initiator_name);
		n = kv(buf, n, sizeof buf, "SessionType", "Normal");
		n = kv(buf, n, sizeof buf, "TargetName", "iqn.2025-10.org.lungate.test:no-such-target");
		n = kv(buf, n, sizeof buf, "AuthMethod", "None");
		enum wait_result w = login_pdu(&c, 0, 1, true, 0, 0, buf, n, &rx);
		if (w == W_GOT) {
			g.checks++;
			if (rx.bhs[36] != 2)
				failf("login to an unknown TargetName: status 0x%02x%02x (want class 0x02)",
				      rx.bhs[36], rx.bhs[37]);
		} else if (w == W_TIMEOUT) {
			failf("login to an unknown TargetName: no answer within 10 s");
		}
		break;
	}
	case 3: { /* no InitiatorName: status class 2 */
		n = kv(buf, n, sizeof buf, "SessionType", "Normal");
		n = kv(buf, n, sizeof buf, "TargetName", g.iqn);
		n = kv(buf, n, sizeof buf, "AuthMethod", "None");
		enum wait_result w = login_pdu(&c, 0, 1, true, 0, 0, buf, n, &rx);
		if (w == W_GOT) {
			g.checks++;
			if (rx.bhs[36] != 2)
				failf("login without InitiatorName: status 0x%02x%02x (want class 0x02)",
				      rx.bhs[36], rx.bhs[37]);
		} else if (w == W_TIMEOUT) {
			failf("login without InitiatorName: no answer within 10 s");
		}
		break;
	}
	case 4: { /* unsupported version: status class 2 */
		n = kv(buf, n, sizeof buf, "InitiatorName", initiator_name);
		n = kv(buf, n, sizeof buf, "TargetName", g.iqn);
		n = kv(buf, n, sizeof buf, "AuthMethod", "None");
		enum wait_result w = login_pdu(&c, 0, 1, true, 0x7f, 0x70, buf, n, &rx);
		if (w == W_GOT) {
			g.checks++;
			if (rx.bhs[36] != 2)
				failf("login with Version-min 0x70: status 0x%02x%02x (want class 0x02)",
				      rx.bhs[36], rx.bhs[37]);
		} else if (w == W_TIMEOUT) {
			failf("login with Version-min 0x70: no answer within 10 s");
		}
		break;
	}
	case 5: { /* a Login Request claiming 16 MiB of keys */
		uint8_t bhs[BHS_LEN] = { 0 };
		bhs[0] = 0x40 | OP_LOGIN_REQ;
		bhs[1] = 0x81;
		memcpy(bhs + 8, c.isid, 6);
		put24(bhs + 5, 0xffffff);
		g.pdus++;
		send_all(&c, bhs, BHS_LEN);
		memset(buf, 'A', sizeof buf);
		for (int i = 0; i < 4; i++)
			if (!send_all(&c, buf, sizeof buf))
				break;
		break;
	}
	case 6: { /* keys without '=' nor NUL, or random bytes */
		size_t len = 1 + rnd_below(sizeof buf - 1);
		if (rnd_below(2))
			memset(buf, 'x', len);
		else
			rnd_fill(buf, len);
		enum wait_result w = login_pdu(&c, 0, 1, true, 0, 0, buf, len, &rx);
		if (w == W_GOT && rx.bhs[36] == 0 && (rx.bhs[1] & 0x80) && (rx.bhs[1] & 3) == 3)
			failf("garbage login keys reached full feature phase");
		break;
	}
	case 7: { /* a TSIH for a session that does not exist */
		c.tsih = (uint16_t)(0x4000 + rnd_below(0x4000));
		n = kv(buf, n, sizeof buf, "InitiatorName", initiator_name);
		n = kv(buf, n, sizeof buf, "SessionType", "Normal");
		n = kv(buf, n, sizeof buf, "TargetName", g.iqn);
		n = kv(buf, n, sizeof buf, "AuthMethod", "None");
		enum wait_result w = login_pdu(&c, 0, 1, true, 0, 0, buf, n, &rx);
		if (w == W_GOT) {
			g.checks++;
			if (rx.bhs[36] != 2)
				failf("login with TSIH 0x%04x of no session: status 0x%02x%02x (want class 0x02)",
				      c.tsih, rx.bhs[36], rx.bhs[37]);
		} else if (w == W_TIMEOUT) {
			failf("login with an unknown TSIH: no answer within 10 s");
		}
		break;
	}
	default: { /* discovery: SendTargets lists the target; no SCSI served */
		const char *why;
		if (!login(&c, true, rnd_below(2), &why)) {
			failf("discovery login failed: %s", why);
			break;
		}
		uint8_t bhs[BHS_LEN] = { 0 };
		bhs[0] = 0x40 | OP_TEXT_REQ;
		bhs[1] = 0x80;
		uint32_t itt = c.itt++;
		put32(bhs + 16, itt);
		put32(bhs + 20, RSV_ITT);
		put32(bhs + 24, c.cmdsn);
		put32(bhs + 28, c.expstatsn);
		n = kv(buf, 0, sizeof buf, "SendTargets", "All");
		if (!send_pdu(&c, bhs, NULL, 0, buf, n))
			break;
		enum wait_result w = wait_for(&c, itt, OP_TEXT_RSP, NULL, &rx, 20000);
		if (w != W_GOT) {
			failf("SendTargets=All: no Text Response");
			break;
		}
		char val[256];
		g.checks++;
		if (!text_get(rx.data, rx.dlen, "TargetName", val, sizeof val) || strcmp(val, g.iqn) != 0)
			failf("SendTargets=All did not list TargetName=%s first", g.iqn);
		else if (!text_get(rx.data, rx.dlen, "TargetAddress", val, sizeof val))
			failf("SendTargets=All gave no TargetAddress");
		uint8_t cdb[16] = { 0x28 };
		cdb[8] = 1;
		struct scsi_result r = scsi_cmd(&c, g.lun, cdb, 16, 512, true, false, 5000);
		if (r.datain > 0 || (r.how == W_GOT && r.status == 0))
			failf("target served a SCSI READ in a discovery session");
		if (r.how != W_CLOSED && rnd_below(2))
			logout(&c);
		break;
	}
	}
	/* Give the target a moment to answer or close, then hang up. */
	shutdown(c.fd, SHUT_WR);
	for (int i = 0; i < 5; i++) {
		int r = recv_pdu(&c, &rx, 100);
		if (r == 0 || r == -2)
			break;
	}
	conn_close(&c);
}

/* A connection that logs in and then misbehaves for some rounds. */
static void session_connection(void)
{
	struct conn c;
	if (conn_open(&c) != 0) {
		failf("cannot connect to %s:%d", g.host, g.port);
		return;
	}
	const char *why;
	bool skip_security = rnd_below(4) == 0;
	if (!login(&c, false, skip_security, &why)) {
		failf("valid login (%s) failed: %s", skip_security ? "operational stage first" :
			"security stage first", why);
		conn_close(&c);
		return;
	}
	/* The first command of a new I_T nexus may meet a UNIT ATTENTION. */
	uint8_t tur[16] = { 0 };
	struct scsi_result r = scsi_cmd_ua(&c, g.lun, tur, 16, 0, false, false);
	if (r.how != W_GOT || r.status != 0) {
		failf("TEST UNIT READY after login: %s status 0x%02x sense %x/%02x",
		      r.how == W_GOT ? "got" : "no answer,", r.status, r.key, r.asc);
		conn_close(&c);
		return;
	}
	if (g.nblocks == 0 && !read_capacity(&c)) {
		failf("READ CAPACITY(16) after login failed");
		conn_close(&c);
		return;
	}
	int rounds = 1 + (int)rnd_below(25);
	bool alive = true;
	for (int i = 0; i < rounds && alive && elapsed() < g.seconds; i++)
	{
		enum kind k = (enum kind)rnd_below(K_COUNT);
		alive = hostile_round(&c, k);
		if (g.verbose)
			fprintf(stderr, "hostile: round kind %d -> %s\n", (int)k, alive ? "answered" : "closed");
	}
	if (alive && rnd_below(2))
		logout(&c);
	conn_close(&c);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "hostile: CHECK FAILED: still running 90 s after its time limit (a hung connection?)\n";
	ssize_t n = write(2, msg, sizeof msg - 1);
	(void)n;
	_exit(3);
}

static void run_one(void)
{
	alarm((unsigned)g.seconds + 90);
	clock_gettime(CLOCK_MONOTONIC, &g.start);
	for (int i = 0; i < g.connections && elapsed() < g.seconds; i++) {
		if (rnd_below(4) == 0)
			prelogin_connection();
		else
			session_connection();
		if (g.failures > 50)
			break;
	}
	printf("hostile[%d]: seed %" PRIu64 ": %ld connections, %ld PDUs, %ld checks, %ld dropped by target, "
	       "%ld rejects, %ld unanswered after random PDUs, %ld failures, %.1f s\n",
	       (int)getpid(), g.seed, g.conns, g.pdus, g.checks, g.drops, g.rejects, g.timeouts_random,
	       g.failures, elapsed());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int procs = 1;
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "iqn", required_argument, NULL, 't' },
		{ "connections", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "procs", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 'r' },
		{ "lun", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	g.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h': g.host = optarg; break;
		case 'p': g.port = atoi(optarg); break;
		case 't': g.iqn = optarg; break;
		case 'n': g.connections = atoi(optarg); break;
		case 's': g.seconds = atoi(optarg); break;
		case 'j': procs = atoi(optarg); break;
		case 'r': g.seed = strtoull(optarg, NULL, 0); break;
		case 'l': g.lun = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: hostile --port PORT --iqn IQN [--host H] [--connections N] "
					"[--seconds S] [--procs P] [--seed X]\n");
			return 2;
		}
	}
	if (g.port <= 0 || !g.iqn) {
		fprintf(stderr, "hostile: --port and --iqn are required\n");
		return 2;
	}
	if (procs < 1 || procs > 64)
		procs = 1;
	g.verbose = getenv("HOSTILE_VERBOSE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)g.seconds + 90); /* hard stop, run_one re-arms it in each child */
	printf("hostile: seed %" PRIu64 " (rerun with --seed %" PRIu64 "), %d process(es)\n", g.seed,
	       g.seed, procs);
	fflush(stdout);

	int status_all = 0;
	pid_t kids[64];
	for (int p = 0; p < procs; p++) {
		uint64_t seed = g.seed + (uint64_t)p * 0x9e3779b97f4a7c15ULL;
		if (procs == 1) {
			rng_state = seed ? seed : 1;
			run_one();
			return g.failures ? 1 : 0;
		}
		kids[p] = fork();
		if (kids[p] < 0) {
			perror("hostile: fork");
			return 2;
		}
		if (kids[p] == 0) {
			g.seed = seed;
			rng_state = seed ? seed : 1;
			run_one();
			_exit(g.failures ? 1 : 0);
		}
	}
	for (int p = 0; p < procs; p++) {
		int st;
		if (waitpid(kids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			status_all = 1;
	}
	return status_all;
}
