// SPDX-License-Identifier: Apache-2.0
/*
 * smc-opt-probe: the lab's stand-in for the sidecar's TCP side of the SMC handshake trigger
 * (test/vm/smc-option.test.ts, docs/smc-option.md). Prints one JSON line per connection.
 *
 *   smc-opt-probe listen PORT [--count N] [--decline-hex HEX] [--no-save-syn] [--pin DIR]
 *                 [--rcvtimeo SEC]
 *     Listens on [::]:PORT (dual stack) with TCP_SAVE_SYN (unless --no-save-syn). Per accepted
 *     connection: the saved SYN (TCP_SAVED_SYN: IP + TCP header) and its TCP options, whether
 *     they carry the SMC option, the BPF map entry for the 4-tuple, then the first bytes: a CLC message (eyecatcher
 *     E2 D4 C3 D9 or E2 D4 C3 C4) is read whole and answered with the --decline-hex bytes (a CLC
 *     Decline, so a kernel SMC client falls back to TCP at once); everything after it (or
 *     everything, without CLC) up to EOF is the application data.
 *
 *   smc-opt-probe connect HOST PORT [--mark M] [--decline-if-peer HEX] [--send TEXT]
 *                 [--reply-file FILE] [--retry SEC] [--pin DIR] [--rcvtimeo SEC]
 *     Connects (SO_MARK first if given), looks up the BPF map entry of the connection and, if
 *     it says the peer's SYN-ACK carried the SMC option, sends the --decline-if-peer bytes as
 *     the first message (a kernel SMC server then falls back with PEERDECL instead of waiting
 *     for a Proposal). Then sends TEXT, half-closes and reads the reply to EOF.
 *
 * The map is read with the raw bpf(2) syscall (BPF_OBJ_GET + BPF_MAP_LOOKUP_ELEM on the pinned
 * smco_conns), exactly what a reader without libbpf (the native addon) has to do.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "smc-option.h"

#ifndef TCP_SAVE_SYN
#define TCP_SAVE_SYN 27
#endif
#ifndef TCP_SAVED_SYN
#define TCP_SAVED_SYN 28
#endif

static const char *pin_dir = SMCO_PIN_DIR;
static int rcvtimeo = 20;

static void die(const char *what)
{
	fprintf(stderr, "smc-opt-probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

static void json_str(FILE *f, const uint8_t *b, size_t n)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\')
			fprintf(f, "\\%c", b[i]);
		else if (b[i] < 0x20 || b[i] >= 0x7f)
			fprintf(f, "\\u%04x", b[i]);
		else
			fputc(b[i], f);
	}
	fputc('"', f);
}

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s) / 2, i;

	if (strlen(s) % 2 || n > max) {
		fprintf(stderr, "smc-opt-probe: bad hex string\n");
		exit(2);
	}
	for (i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "smc-opt-probe: bad hex string\n");
			exit(2);
		}
		out[i] = (uint8_t)v;
	}
	return n;
}

/* ---- the BPF map, raw syscalls ---- */

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int conns_fd = -2;

/* Fills the key from a socket's own view of its 4-tuple (v4-mapped folded, as the program does). */
static void sock_key(int fd, struct smco_key *k, char *lstr, char *rstr, size_t len)
{
	struct sockaddr_storage ls, rs;
	socklen_t ll = sizeof(ls), rl = sizeof(rs);
	char a[INET6_ADDRSTRLEN];
	int i;

	memset(k, 0, sizeof(*k));
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) || getpeername(fd, (struct sockaddr *)&rs, &rl))
		die("getsockname/getpeername");
	for (i = 0; i < 2; i++) {
		struct sockaddr_storage *ss = i ? &rs : &ls;
		__u32 *addr = i ? k->raddr : k->laddr;
		__u16 port;

		if (ss->ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

			k->family = AF_INET;
			addr[0] = s4->sin_addr.s_addr;
			port = ntohs(s4->sin_port);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

			memcpy(addr, &s6->sin6_addr, 16);
			port = ntohs(s6->sin6_port);
			k->family = AF_INET6;
			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
				k->family = AF_INET;
				addr[0] = addr[3];
				addr[1] = addr[2] = addr[3] = 0;
			}
		}
		*(i ? &k->rport : &k->lport) = port;
		inet_ntop(k->family, addr, a, sizeof(a));
		snprintf(i ? rstr : lstr, len, k->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	}
}

/* Prints "bpf":{...}: null when the map is not pinned, else found / flags. Returns the flags
 * (0 when absent). */
static __u32 print_bpf(FILE *f, const struct smco_key *k)
{
	union bpf_attr attr;
	struct smco_val v;
	char path[512];

	if (conns_fd == -2) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, SMCO_MAP_CONNS);
		memset(&attr, 0, sizeof(attr));
		attr.pathname = (__u64)(uintptr_t)path;
		attr.file_flags = BPF_F_RDONLY; /* a reader needs read permission on the pin only */
		conns_fd = (int)sys_bpf(BPF_OBJ_GET, &attr);
		if (conns_fd < 0)
			conns_fd = -1;
	}
	if (conns_fd < 0) {
		fprintf(f, "\"bpf\":null");
		return 0;
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)conns_fd;
	attr.key = (__u64)(uintptr_t)k;
	attr.value = (__u64)(uintptr_t)&v;
	if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr)) {
		fprintf(f, "\"bpf\":{\"found\":false}");
		return 0;
	}
	fprintf(f,
		"\"bpf\":{\"found\":true,\"flags\":%u,\"passive\":%s,\"local_sent\":%s,\"peer_seen\":%s,"
		"\"peer_sent\":%s}",
		v.flags, v.flags & SMCO_F_PASSIVE ? "true" : "false", v.flags & SMCO_F_LOCAL_SENT ? "true" : "false",
		v.flags & SMCO_F_PEER_SEEN ? "true" : "false", v.flags & SMCO_F_PEER_SENT ? "true" : "false");
	return v.flags;
}

/* ---- TCP options ---- */

/* Offset of the SMC option in a TCP options string, -1 when absent, -2 when malformed
 * (the same walk as sidecar/src/protocol/tcp-option.ts findSmcTcpOption). */
static int find_smc_option(const uint8_t *o, size_t n)
{
	size_t off = 0;

	while (off < n) {
		uint8_t kind = o[off], len;

		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		if (off + 1 >= n)
			return -2;
		len = o[off + 1];
		if (len < 2 || off + len > n)
			return -2;
		if (kind == SMCO_TCPOPT_EXP && len == SMCO_TCPOLEN &&
		    ((uint32_t)o[off + 2] << 24 | (uint32_t)o[off + 3] << 16 | (uint32_t)o[off + 4] << 8 | o[off + 5]) ==
			    SMCO_EXID)
			return (int)off;
		off += len;
	}
	return -1;
}

static void print_saved_syn(FILE *f, int fd)
{
	uint8_t syn[512];
	socklen_t len = sizeof(syn);
	size_t ip_len, tcp_len;
	int at;

	if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len) || len == 0) {
		fprintf(f, "\"saved_syn\":null,\"saved_syn_error\":\"%s\"", len == 0 ? "empty" : strerror(errno));
		return;
	}
	fprintf(f, "\"saved_syn\":\"");
	hex(f, syn, len);
	fprintf(f, "\"");
	ip_len = (syn[0] >> 4) == 4 ? (size_t)(syn[0] & 0xf) * 4 : 40;
	if (len < ip_len + 20)
		return;
	tcp_len = (size_t)(syn[ip_len + 12] >> 4) * 4;
	if (tcp_len < 20 || ip_len + tcp_len > len)
		return;
	fprintf(f, ",\"syn_ip_version\":%d,\"syn_options\":\"", syn[0] >> 4);
	hex(f, syn + ip_len + 20, tcp_len - 20);
	at = find_smc_option(syn + ip_len + 20, tcp_len - 20);
	fprintf(f, "\",\"syn_smc_option\":%s", at >= 0 ? "true" : "false");
}

/* ---- I/O ---- */

/* Reads up to n bytes, stopping early only at EOF; -1 on error (timeout included). */
static ssize_t read_full(int fd, uint8_t *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return got ? (ssize_t)got : -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void set_timeout(int fd)
{
	struct timeval tv = { .tv_sec = rcvtimeo };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_clc(const uint8_t *b)
{
	return b[0] == 0xe2 && b[1] == 0xd4 && b[2] == 0xc3 && (b[3] == 0xd9 || b[3] == 0xc4);
}

static void serve(int c, const uint8_t *decline, size_t decline_len)
{
	static uint8_t buf[65536];
	uint8_t head[256];
	char l[80], r[80];
	struct smco_key k;
	size_t app_len = 0, shown = 0, clc_len = 0;
	ssize_t n;
	int declined = 0;

	set_timeout(c);
	sock_key(c, &k, l, r, sizeof(l));
	printf("{\"event\":\"accept\",\"local\":\"%s\",\"remote\":\"%s\",", l, r);
	print_saved_syn(stdout, c);
	printf(",");
	print_bpf(stdout, &k);

	n = read_full(c, buf, 8);
	if (n == 8 && is_clc(buf)) {
		clc_len = (size_t)buf[5] << 8 | buf[6];
		if (clc_len < 8 || clc_len > sizeof(buf))
			clc_len = 8;
		else if (read_full(c, buf + 8, clc_len - 8) != (ssize_t)(clc_len - 8))
			clc_len = 8;
		printf(",\"clc\":{\"type\":%u,\"length\":%zu,\"hex\":\"", buf[4], clc_len);
		hex(stdout, buf, clc_len);
		printf("\"}");
		if (decline_len && write_all(c, decline, decline_len) == 0)
			declined = 1;
		n = 0;
	} else {
		printf(",\"clc\":null");
	}
	printf(",\"declined\":%s", declined ? "true" : "false");
	/* Application data: whatever followed (the n bytes already read when there was no CLC);
	 * the first 256 bytes are shown. */
	if (n > 0) {
		app_len = (size_t)n;
		shown = app_len;
		memcpy(head, buf, shown);
	}
	for (;;) {
		ssize_t m = read(c, buf, sizeof(buf));

		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0) {
			if (m < 0)
				printf(",\"read_error\":\"%s\"", strerror(errno));
			break;
		}
		app_len += (size_t)m;
		if (shown < sizeof(head)) {
			size_t take = (size_t)m < sizeof(head) - shown ? (size_t)m : sizeof(head) - shown;

			memcpy(head + shown, buf, take);
			shown += take;
		}
	}
	printf(",\"app_bytes\":%zu,\"app\":", app_len);
	json_str(stdout, head, shown);
	printf("}\n");
	fflush(stdout);
	close(c);
}

static int do_listen(int argc, char **argv)
{
	uint8_t decline[256];
	size_t decline_len = 0;
	int port, count = 0, served = 0, one = 1, zero = 0, save_syn = 1, s, i;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };

	if (argc < 1)
		return 2;
	port = atoi(argv[0]);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--decline-hex") && i + 1 < argc)
			decline_len = unhex(argv[++i], decline, sizeof(decline));
		else if (!strcmp(argv[i], "--no-save-syn"))
			save_syn = 0;
		else if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin_dir = argv[++i];
		else if (!strcmp(argv[i], "--rcvtimeo") && i + 1 < argc)
			rcvtimeo = atoi(argv[++i]);
		else
			return 2;
	}
	s = socket(AF_INET6, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (save_syn && setsockopt(s, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof(one)))
		die("TCP_SAVE_SYN");
	a.sin6_port = htons((uint16_t)port);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 16))
		die("bind/listen");
	fprintf(stderr, "smc-opt-probe: listening on [::]:%d\n", port);
	while (!count || served < count) {
		int c = accept(s, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		serve(c, decline, decline_len);
		served++;
	}
	return 0;
}

static int do_connect(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	uint8_t decline[256];
	size_t decline_len = 0, got = 0;
	const char *text = "", *reply_file = NULL;
	long mark = -1;
	double retry = 0, t0 = now(), t_conn;
	struct sockaddr_in a = { .sin_family = AF_INET };
	char l[80], r[80];
	struct smco_key k;
	__u32 flags;
	int s, i, declined = 0;

	if (argc < 2)
		return 2;
	if (inet_pton(AF_INET, argv[0], &a.sin_addr) != 1)
		return 2;
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--mark") && i + 1 < argc)
			mark = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--decline-if-peer") && i + 1 < argc)
			decline_len = unhex(argv[++i], decline, sizeof(decline));
		else if (!strcmp(argv[i], "--send") && i + 1 < argc)
			text = argv[++i];
		else if (!strcmp(argv[i], "--reply-file") && i + 1 < argc)
			reply_file = argv[++i];
		else if (!strcmp(argv[i], "--retry") && i + 1 < argc)
			retry = atof(argv[++i]);
		else if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin_dir = argv[++i];
		else if (!strcmp(argv[i], "--rcvtimeo") && i + 1 < argc)
			rcvtimeo = atoi(argv[++i]);
		else
			return 2;
	}
	for (;;) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			die("socket");
		if (mark >= 0) {
			int m = (int)mark;

			if (setsockopt(s, SOL_SOCKET, SO_MARK, &m, sizeof(m)))
				die("SO_MARK");
		}
		set_timeout(s);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (errno != ECONNREFUSED || now() - t0 > retry)
			die("connect");
		close(s);
		usleep(300000);
	}
	t_conn = now();
	sock_key(s, &k, l, r, sizeof(l));
	printf("{\"event\":\"connect\",\"local\":\"%s\",\"remote\":\"%s\",\"mark\":%ld,", l, r, mark);
	flags = print_bpf(stdout, &k);
	if (decline_len && (flags & SMCO_F_PEER_SENT)) {
		if (write_all(s, decline, decline_len))
			die("send decline");
		declined = 1;
	}
	if (write_all(s, (const uint8_t *)text, strlen(text)))
		die("send");
	shutdown(s, SHUT_WR);
	for (;;) {
		ssize_t n = read(s, buf + got, sizeof(buf) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			break;
	}
	if (reply_file) {
		FILE *f = fopen(reply_file, "w");

		if (!f)
			die(reply_file);
		fwrite(buf, 1, got, f);
		fclose(f);
	}
	printf(",\"declined\":%s,\"reply_bytes\":%zu,\"connect_ms\":%.1f,\"total_ms\":%.1f}\n",
	       declined ? "true" : "false", got, (t_conn - t0) * 1e3, (now() - t0) * 1e3);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc >= 2 && !strcmp(argv[1], "listen"))
		rc = do_listen(argc - 2, argv + 2);
	else if (argc >= 2 && !strcmp(argv[1], "connect"))
		rc = do_connect(argc - 2, argv + 2);
	if (rc == 2)
		fputs("usage: smc-opt-probe listen PORT [--count N] [--decline-hex HEX] [--no-save-syn] [--pin DIR]\n"
		      "                     [--rcvtimeo SEC]\n"
		      "       smc-opt-probe connect IPV4 PORT [--mark M] [--decline-if-peer HEX] [--send TEXT]\n"
		      "                     [--reply-file FILE] [--retry SEC] [--pin DIR] [--rcvtimeo SEC]\n",
		      stderr);
	return rc;
}
