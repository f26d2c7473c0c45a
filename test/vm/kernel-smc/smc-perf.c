/* smc-perf: ping-pong latency and bulk throughput over a stream socket, for comparing plain
 * TCP with kernel SMC-R in the lab. It uses ordinary AF_INET sockets, so the same binary runs
 * over TCP, or over SMC under LD_PRELOAD=smc-preload.so; --smc creates AF_SMC sockets itself.
 *
 *   smc-perf server [-p PORT] [-n CONNS] [--smc] [--exec CMD]
 *   smc-perf rtt  HOST [-p PORT] [-s SIZE=64] [-n COUNT=2000] [-w WARMUP=100] [opts]
 *   smc-perf bulk HOST [-p PORT] [-b BYTES=32MiB] [-c CHUNK=64KiB] [opts]
 *   smc-perf quit HOST [-p PORT]                  # stop the server
 *   opts: --smc  -l LABEL  -r RETRY_SEC (connect retries while refused)  --exec CMD
 *
 * The client prints one JSON line: rtt {p50_us, p90_us, p99_us, min_us, max_us, mean_us},
 * bulk {bytes, sec, mib_s}, and connect_ms. --exec runs CMD through /bin/sh after the
 * measurement while the connection is still open (env KSMC_LOCAL_PORT, KSMC_PEER_PORT), e.g.
 * to take smc-stats of the live socket. Protocol: a 16-byte header (magic "KSMC", op, size,
 * count; big endian), then op 1 = count echoes of size bytes, op 2 = size*count bytes and an
 * 8-byte byte count back, op 3 = quit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_SMC
#define AF_SMC 43
#endif

enum { OP_PING = 1, OP_BULK = 2, OP_QUIT = 3 };

static int use_smc;
static const char *exec_cmd;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "smc-perf: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int readn(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int writen(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int new_socket(void)
{
	int fd = use_smc ? socket(AF_SMC, SOCK_STREAM | SOCK_CLOEXEC, 0)
			 : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void run_exec(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	char b[16];
	int rc;

	if (!exec_cmd)
		return;
	if (getsockname(fd, (struct sockaddr *)&a, &l) == 0) {
		snprintf(b, sizeof(b), "%u", ntohs(a.sin_port));
		setenv("KSMC_LOCAL_PORT", b, 1);
	}
	l = sizeof(a);
	if (getpeername(fd, (struct sockaddr *)&a, &l) == 0) {
		snprintf(b, sizeof(b), "%u", ntohs(a.sin_port));
		setenv("KSMC_PEER_PORT", b, 1);
	}
	fflush(stdout);
	rc = system(exec_cmd);
	if (rc != 0)
		fprintf(stderr, "smc-perf: --exec exited with status %d\n", rc);
}

/* ---- server ---- */

static void serve_one(int c)
{
	uint32_t h[4], op, size, count, i;
	static char buf[1 << 20];

	if (readn(c, h, sizeof(h)) < 0 || memcmp(h, "KSMC", 4) != 0)
		return;
	op = ntohl(h[1]);
	size = ntohl(h[2]);
	count = ntohl(h[3]);
	if (op == OP_PING) {
		if (size > sizeof(buf))
			return;
		for (i = 0; i < count; i++)
			if (readn(c, buf, size) < 0 || writen(c, buf, size) < 0)
				return;
	} else if (op == OP_BULK) {
		uint64_t total = (uint64_t)size * count, got = 0, be;
		while (got < total) {
			size_t want = total - got < sizeof(buf) ? (size_t)(total - got) : sizeof(buf);
			ssize_t r = read(c, buf, want);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return;
			got += (uint64_t)r;
		}
		be = htobe64(got);
		if (writen(c, &be, sizeof(be)) < 0)
			return;
	} else if (op == OP_QUIT) {
		writen(c, "BYE!", 4);
		close(c);
		exit(0);
	}
	run_exec(c);
}

static int server(int port, long conns)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = new_socket(), one = 1;
	long n;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(fd, 16) < 0)
		die("listen");
	printf("listening on port %d\n", port);
	fflush(stdout);
	for (n = 0; conns <= 0 || n < conns; n++) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		serve_one(c);
		close(c);
	}
	close(fd);
	return 0;
}

/* ---- client ---- */

static int connect_to(const char *host, int port, double retry_sec, double *connect_ms)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	double deadline = now() + retry_sec;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
		if (getaddrinfo(host, NULL, &hints, &res) != 0) {
			fprintf(stderr, "smc-perf: cannot resolve %s\n", host);
			exit(1);
		}
		a.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
		freeaddrinfo(res);
	}
	for (;;) {
		int fd = new_socket();
		double t0 = now();
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			*connect_ms = (now() - t0) * 1e3;
			return fd;
		}
		if ((errno != ECONNREFUSED && errno != ETIMEDOUT && errno != EHOSTUNREACH) ||
		    now() >= deadline)
			die("connect");
		close(fd);
		usleep(200 * 1000);
	}
}

static void header(int fd, uint32_t op, uint32_t size, uint32_t count)
{
	uint32_t h[4] = { 0, htonl(op), htonl(size), htonl(count) };

	memcpy(h, "KSMC", 4);
	if (writen(fd, h, sizeof(h)) < 0)
		die("write header");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p)
{
	long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);

	return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int rtt(int fd, const char *label, long size, long count, long warmup, double cms)
{
	char *buf = calloc(1, (size_t)size);
	double *lat = calloc((size_t)count, sizeof(double)), sum = 0;
	long i;

	if (!buf || !lat || size <= 0 || count <= 0 || size > (1 << 20))
		die("rtt arguments");
	memset(buf, 'p', (size_t)size);
	header(fd, OP_PING, (uint32_t)size, (uint32_t)(count + warmup));
	for (i = 0; i < warmup + count; i++) {
		double t0 = now();
		if (writen(fd, buf, (size_t)size) < 0 || readn(fd, buf, (size_t)size) < 0)
			die("ping-pong");
		if (i >= warmup) {
			lat[i - warmup] = (now() - t0) * 1e6;
			sum += lat[i - warmup];
		}
	}
	run_exec(fd);
	qsort(lat, (size_t)count, sizeof(double), cmp_double);
	printf("{\"op\":\"rtt\",\"label\":\"%s\",\"size\":%ld,\"count\":%ld,\"p50_us\":%.1f,"
	       "\"p90_us\":%.1f,\"p99_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
	       "\"connect_ms\":%.2f}\n",
	       label, size, count, pct(lat, count, 50), pct(lat, count, 90), pct(lat, count, 99),
	       lat[0], lat[count - 1], sum / (double)count, cms);
	return 0;
}

static int bulk(int fd, const char *label, long long bytes, long chunk, double cms)
{
	char *buf = malloc((size_t)chunk);
	long long sent = 0;
	uint64_t be;
	uint32_t count;
	double t0, sec;

	if (!buf || chunk <= 0 || bytes <= 0 || bytes % chunk != 0 || bytes / chunk > UINT32_MAX)
		die("bulk arguments (BYTES must be a multiple of CHUNK)");
	for (long i = 0; i < chunk; i++)
		buf[i] = (char)(i * 131 + 7);
	count = (uint32_t)(bytes / chunk);
	t0 = now();
	header(fd, OP_BULK, (uint32_t)chunk, count);
	while (sent < bytes) {
		if (writen(fd, buf, (size_t)chunk) < 0)
			die("bulk write");
		sent += chunk;
	}
	if (readn(fd, &be, sizeof(be)) < 0)
		die("bulk ack");
	sec = now() - t0;
	if ((long long)be64toh(be) != bytes) {
		fprintf(stderr, "smc-perf: server got %llu of %lld bytes\n",
			(unsigned long long)be64toh(be), bytes);
		exit(1);
	}
	run_exec(fd);
	printf("{\"op\":\"bulk\",\"label\":\"%s\",\"bytes\":%lld,\"chunk\":%ld,\"sec\":%.4f,"
	       "\"mib_s\":%.2f,\"connect_ms\":%.2f}\n",
	       label, bytes, chunk, sec, (double)bytes / 1048576.0 / sec, cms);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: smc-perf server [-p PORT] [-n CONNS] [--smc] [--exec CMD]\n"
			"       smc-perf rtt HOST [-p PORT] [-s SIZE] [-n COUNT] [-w WARMUP] [opts]\n"
			"       smc-perf bulk HOST [-p PORT] [-b BYTES] [-c CHUNK] [opts]\n"
			"       smc-perf quit HOST [-p PORT]\n"
			"       opts: --smc -l LABEL -r RETRY_SEC --exec CMD\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cmd, *host = NULL, *label = "";
	long port = 5201, size = 64, count = 2000, warmup = 100, chunk = 65536, conns = 0;
	long long bytes = 32LL << 20;
	double retry = 0, cms = 0;
	int i, fd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (!strcmp(a, "--smc")) {
			use_smc = 1;
			takes = 0;
		} else if (!v && a[0] == '-')
			usage();
		else if (!strcmp(a, "-p"))
			port = atol(v);
		else if (!strcmp(a, "-s"))
			size = atol(v);
		else if (!strcmp(a, "-n"))
			count = conns = atol(v);
		else if (!strcmp(a, "-w"))
			warmup = atol(v);
		else if (!strcmp(a, "-b"))
			bytes = atoll(v);
		else if (!strcmp(a, "-c"))
			chunk = atol(v);
		else if (!strcmp(a, "-l"))
			label = v;
		else if (!strcmp(a, "-r"))
			retry = atof(v);
		else if (!strcmp(a, "--exec"))
			exec_cmd = v;
		else if (a[0] != '-' && !host) {
			host = a;
			takes = 0;
		} else
			usage();
		i += takes;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "server"))
		return server((int)port, conns);
	if (!host)
		usage();
	fd = connect_to(host, (int)port, retry, &cms);
	if (!strcmp(cmd, "rtt"))
		return rtt(fd, label, size, count, warmup, cms);
	if (!strcmp(cmd, "bulk"))
		return bulk(fd, label, bytes, chunk, cms);
	if (!strcmp(cmd, "quit")) {
		char b[4];
		header(fd, OP_QUIT, 0, 0);
		return readn(fd, b, 4) < 0;
	}
	usage();
	return 2;
}
