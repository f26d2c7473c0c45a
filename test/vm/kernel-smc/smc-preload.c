/* smc-preload.so: run unmodified TCP programs over the kernel's SMC (like smc-tools' smc_run).
 *
 *   LD_PRELOAD=/path/to/smc-preload.so socat ...
 *
 * socket(AF_INET|AF_INET6, SOCK_STREAM[|flags], 0|IPPROTO_TCP) becomes an SMC socket; every
 * other socket() call is passed through. SMC sockets start with a TCP connection and the CLC
 * handshake; if SMC-R cannot be used they stay on that TCP connection (fallback), so the
 * program keeps working either way.
 *
 * Environment:
 *   SMC_PRELOAD_MODE   afsmc (default): socket(AF_SMC, type, SMCPROTO_SMC | SMCPROTO_SMC6)
 *                      ipproto: socket(AF_INET|AF_INET6, type, IPPROTO_SMC = 256) (Linux >= 6.11),
 *                               AF_SMC if the kernel refuses it
 *                      off: no conversion
 *   SMC_PRELOAD_DEBUG  1: log each conversion to stderr
 * If no SMC socket can be created (no smc module), the original socket() is used.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef AF_SMC
#define AF_SMC 43
#endif
#ifndef IPPROTO_SMC
#define IPPROTO_SMC 256
#endif
#define SMCPROTO_SMC 0
#define SMCPROTO_SMC6 1

typedef int (*socket_fn)(int, int, int);

static socket_fn real_socket(void)
{
	static socket_fn fn;

	if (!fn)
		fn = (socket_fn)dlsym(RTLD_NEXT, "socket");
	return fn;
}

static int debug(void)
{
	const char *d = getenv("SMC_PRELOAD_DEBUG");

	return d && *d && strcmp(d, "0") != 0;
}

int socket(int domain, int type, int protocol)
{
	socket_fn orig = real_socket();
	const char *mode = getenv("SMC_PRELOAD_MODE");
	int fd, saved;

	if (!orig) {
		errno = ENOSYS;
		return -1;
	}
	if ((domain != AF_INET && domain != AF_INET6) || (type & 0xf) != SOCK_STREAM ||
	    (protocol != 0 && protocol != IPPROTO_TCP) || (mode && !strcmp(mode, "off")))
		return orig(domain, type, protocol);

	saved = errno;
	if (mode && !strcmp(mode, "ipproto")) {
		fd = orig(domain, type, IPPROTO_SMC);
		if (fd >= 0) {
			if (debug())
				fprintf(stderr, "smc-preload: fd %d = socket(%s, IPPROTO_SMC)\n", fd,
					domain == AF_INET ? "AF_INET" : "AF_INET6");
			errno = saved;
			return fd;
		}
	}
	fd = orig(AF_SMC, type, domain == AF_INET ? SMCPROTO_SMC : SMCPROTO_SMC6);
	if (fd >= 0) {
		if (debug())
			fprintf(stderr, "smc-preload: fd %d = socket(AF_SMC, %s)\n", fd,
				domain == AF_INET ? "SMCPROTO_SMC" : "SMCPROTO_SMC6");
		errno = saved;
		return fd;
	}
	if (debug())
		fprintf(stderr, "smc-preload: no SMC socket (%s); using TCP\n", strerror(errno));
	errno = saved;
	return orig(domain, type, protocol);
}
