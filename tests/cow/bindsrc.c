/* bindsrc: an LD_PRELOAD shim that makes a client connect from a chosen
 * loopback address, so a test can log one initiator name in from two
 * machines (127.0.0.1 and 127.0.0.2) with unmodified clients (qemu-io,
 * libiscsi-bin, lg-cow-client).
 *
 *   LG_BIND_SRC=127.0.0.2 LD_PRELOAD=/path/libbindsrc.so qemu-io ...
 *
 * Only IPv4 sockets connecting to 127.0.0.0/8 are bound, and only to a
 * source address inside 127.0.0.0/8; anything else connects unchanged.
 * Built without sanitizers: it is preloaded into programs that have none.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

/* Is a (network byte order) IPv4 address inside 127.0.0.0/8? */
static int bindsrc_is_loopback(in_addr_t a)
{
  return (ntohl(a) >> 24) == 127;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
  static connect_fn real_connect;
  if (!real_connect)
    real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
  if (!real_connect) {
    errno = ENOSYS;
    return -1;
  }
  const char *src = getenv("LG_BIND_SRC");
  if (src && *src && sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *dst = (const struct sockaddr_in *)sa;
    struct sockaddr_in me;
    memset(&me, 0, sizeof me);
    me.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &me.sin_addr) != 1 || !bindsrc_is_loopback(me.sin_addr.s_addr)) {
      fprintf(stderr, "bindsrc: LG_BIND_SRC=%s is not an address in 127.0.0.0/8\n", src);
      errno = EINVAL;
      return -1;
    }
    if (bindsrc_is_loopback(dst->sin_addr.s_addr) &&
        bind(fd, (const struct sockaddr *)&me, sizeof me) < 0) {
      int e = errno;
      fprintf(stderr, "bindsrc: bind to %s failed: %s\n", src, strerror(e));
      errno = e;
      return -1;
    }
  }
  return real_connect(fd, sa, len);
}
