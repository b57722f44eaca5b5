/* freeport: print a TCP port that is free on 127.0.0.1 (and on ::1 when the
 * machine has it), chosen at random below the kernel's ephemeral range so that
 * no outgoing connection of a parallel test can take it in the meantime.
 *
 * usage: freeport            -> one port number on stdout, exit 0
 * The kernel is asked by bind(2); a port is printed only if both binds work. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { PORT_LOW = 20000, PORT_HIGH = 32000, TRIES = 500 };

/* Try to bind a listening TCP socket of family af on the loopback at port;
 * 1 if it worked, 0 if the port is taken, -1 if the family is not there. */
static int loopback_bind(int af, int port)
{
	int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int r;
	if (af == AF_INET) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r = bind(fd, (struct sockaddr *)&a, sizeof a);
	} else {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
		a.sin6_addr = in6addr_loopback;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		r = bind(fd, (struct sockaddr *)&a, sizeof a);
	}
	int err = errno;
	close(fd);
	if (r == 0)
		return 1;
	return err == EADDRNOTAVAIL || err == EAFNOSUPPORT ? -1 : 0;
}

int main(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	srandom((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ ((unsigned)getpid() << 16)));

	for (int i = 0; i < TRIES; i++) {
		int port = PORT_LOW + (int)(random() % (PORT_HIGH - PORT_LOW));
		if (loopback_bind(AF_INET, port) != 1)
			continue;
		if (loopback_bind(AF_INET6, port) == 0)
			continue; /* ::1 exists and the port is taken there */
		printf("%d\n", port);
		return 0;
	}
	fprintf(stderr, "freeport: no free port found in %d..%d after %d tries\n",
		PORT_LOW, PORT_HIGH, TRIES);
	return 1;
}
