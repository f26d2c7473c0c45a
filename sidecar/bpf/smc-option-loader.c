// SPDX-License-Identifier: Apache-2.0
/*
 * smc-option-loader: loads, pins, attaches and inspects the SMC TCP option sock_ops program
 * (smc_option.bpf.o). Every command prints one JSON object on stdout; errors go to stderr with
 * a non-zero exit status. See docs/smc-option.md.
 *
 *   smc-option-loader [--pin DIR] [--obj FILE] attach CGROUP [FILTER...]
 *   smc-option-loader [--pin DIR] detach CGROUP
 *   smc-option-loader [--pin DIR] status CGROUP
 *   smc-option-loader [--pin DIR] config [FILTER...]      (no filter: show)
 *   smc-option-loader [--pin DIR] query LOCAL REMOTE       (IP:PORT or [IP6]:PORT)
 *   smc-option-loader [--pin DIR] dump
 *   smc-option-loader [--pin DIR] stats
 *   smc-option-loader [--pin DIR] unload
 *
 * FILTER: --all | --mark VALUE[/MASK] | --lport PORT | --rport PORT (repeatable; a socket is
 * selected when any filter matches). `attach` without filters selects every TCP socket of the
 * cgroup; with filters it replaces the configuration (one configuration per pin directory).
 *
 * The program is loaded once and pinned as DIR/smc_option_prog, its maps as DIR/smco_*
 * (libbpf pins them by name and reuses existing pins); further attaches reuse the pinned
 * program, so all attached cgroups share the maps. Attachment uses BPF_F_ALLOW_MULTI, which
 * leaves other sock_ops programs of the cgroup (or its ancestors) in place.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "smc-option.h"

static const char *pin_dir = SMCO_PIN_DIR;
static const char *obj_path;
static int verbose;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("smc-option-loader: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void pin_path(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", pin_dir, name) >= len)
		die("pin path too long");
}

/* fd of a pinned map or program, -1 when absent (dies on other errors). */
static int pinned_fd(const char *name, int must)
{
	char path[PATH_MAX];
	int fd;

	pin_path(path, sizeof(path), name);
	fd = bpf_obj_get(path);
	if (fd < 0 && (must || errno != ENOENT))
		die("%s: %s (is the program loaded? run attach first)", path, strerror(errno));
	return fd;
}

/* Serialises loaders on the same pin directory (two attaches racing to load the object). */
static int lock_pin_dir(void)
{
	int fd;

	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		die("mkdir %s: %s (is bpffs mounted on /sys/fs/bpf?)", pin_dir, strerror(errno));
	fd = open(pin_dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open %s: %s", pin_dir, strerror(errno));
	if (flock(fd, LOCK_EX))
		die("flock %s: %s", pin_dir, strerror(errno));
	return fd;
}

static const char *default_obj(void)
{
	static char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 32);
	char *slash;

	if (n <= 0)
		return "smc_option.bpf.o";
	buf[n] = 0;
	slash = strrchr(buf, '/');
	strcpy(slash ? slash + 1 : buf, "smc_option.bpf.o");
	return buf;
}

/* The pinned program, loading and pinning the object (and its maps) first if needed. */
static int load_prog(int *loaded)
{
	char path[PATH_MAX];
	struct bpf_object *obj;
	struct bpf_program *prog;
	int fd, err;
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);

	*loaded = 0;
	fd = pinned_fd(SMCO_PIN_PROG, 0);
	if (fd >= 0)
		return fd;
	if (!obj_path)
		obj_path = default_obj();
	obj = bpf_object__open_file(obj_path, &opts);
	if (!obj)
		die("open %s: %s", obj_path, strerror(errno));
	err = bpf_object__load(obj);
	if (err)
		die("load %s: %s (the verifier log is above; -v for libbpf debug output)", obj_path, strerror(-err));
	prog = bpf_object__find_program_by_name(obj, "smc_option");
	if (!prog)
		die("%s has no program smc_option", obj_path);
	pin_path(path, sizeof(path), SMCO_PIN_PROG);
	err = bpf_program__pin(prog, path);
	if (err)
		die("pin %s: %s", path, strerror(-err));
	fd = dup(bpf_program__fd(prog));
	bpf_object__close(obj); /* pins and the dup keep program and maps alive */
	*loaded = 1;
	return fd;
}

static int open_cgroup(const char *cg)
{
	int fd = open(cg, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		die("open cgroup %s: %s", cg, strerror(errno));
	return fd;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		die("bpf_obj_get_info_by_fd: %s", strerror(errno));
	return info.id;
}

/* Whether program `id` is attached (directly) to the cgroup, and how many sock_ops programs are. */
static int attached(int cg_fd, __u32 id, __u32 *count)
{
	__u32 ids[64], cnt = 64, flags = 0, i;

	if (bpf_prog_query(cg_fd, BPF_CGROUP_SOCK_OPS, 0, &flags, ids, &cnt))
		die("bpf_prog_query: %s", strerror(errno));
	*count = cnt;
	for (i = 0; i < cnt; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* ---- configuration ---- */

struct filters {
	int given;
	struct smco_cfg cfg;
	int nports;
	__u32 ports[64];
};

static unsigned long parse_num(const char *s, unsigned long max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max)
		die("bad %s: %s", what, s);
	return v;
}

static int parse_filters(int argc, char **argv, struct filters *f)
{
	int i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--all")) {
			f->cfg.flags |= SMCO_CFG_ALL;
		} else if (!strcmp(a, "--mark") && i + 1 < argc) {
			char *v = argv[++i], *slash = strchr(v, '/');

			if (slash)
				*slash = 0;
			f->cfg.flags |= SMCO_CFG_MARK;
			f->cfg.mark = parse_num(v, 0xffffffffUL, "mark");
			f->cfg.mark_mask = slash ? parse_num(slash + 1, 0xffffffffUL, "mark mask") : 0xffffffffU;
			f->cfg.mark &= f->cfg.mark_mask;
		} else if ((!strcmp(a, "--lport") || !strcmp(a, "--rport")) && i + 1 < argc) {
			int dir = a[2] == 'l' ? SMCO_PORT_LOCAL : SMCO_PORT_REMOTE;
			unsigned long port = parse_num(argv[++i], 65535, "port");

			if (f->nports == 64)
				die("at most 64 ports");
			f->cfg.flags |= SMCO_CFG_PORTS;
			f->ports[f->nports++] = SMCO_PORT_KEY(dir, port);
		} else {
			die("unknown filter %s", a);
		}
		f->given = 1;
	}
	return f->given;
}

static void write_config(const struct filters *f)
{
	int cfg_fd = pinned_fd(SMCO_MAP_CFG, 1), ports_fd = pinned_fd(SMCO_MAP_PORTS, 1);
	__u32 zero = 0, key, next;
	__u8 one = 1;
	int i;

	/* Ports first: while they change, the old flags (or none) still apply. */
	while (bpf_map_get_next_key(ports_fd, NULL, &next) == 0) {
		key = next;
		if (bpf_map_delete_elem(ports_fd, &key))
			die("clear ports: %s", strerror(errno));
	}
	for (i = 0; i < f->nports; i++)
		if (bpf_map_update_elem(ports_fd, &f->ports[i], &one, BPF_ANY))
			die("add port: %s", strerror(errno));
	if (bpf_map_update_elem(cfg_fd, &zero, &f->cfg, BPF_ANY))
		die("write config: %s", strerror(errno));
	close(cfg_fd);
	close(ports_fd);
}

static void print_config(void)
{
	int cfg_fd = pinned_fd(SMCO_MAP_CFG, 1), ports_fd = pinned_fd(SMCO_MAP_PORTS, 1);
	struct smco_cfg cfg = {};
	__u32 zero = 0, key, next;
	const char *sep = "";
	int have;

	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg))
		die("read config: %s", strerror(errno));
	printf("{\"all\":%s,\"mark\":", cfg.flags & SMCO_CFG_ALL ? "true" : "false");
	if (cfg.flags & SMCO_CFG_MARK)
		printf("{\"value\":\"0x%x\",\"mask\":\"0x%x\"}", cfg.mark, cfg.mark_mask);
	else
		printf("null");
	printf(",\"lports\":[");
	for (have = bpf_map_get_next_key(ports_fd, NULL, &next) == 0; have;
	     have = bpf_map_get_next_key(ports_fd, &key, &next) == 0) {
		key = next;
		if ((key >> 16) == SMCO_PORT_LOCAL && (cfg.flags & SMCO_CFG_PORTS)) {
			printf("%s%u", sep, key & 0xffff);
			sep = ",";
		}
	}
	sep = "";
	printf("],\"rports\":[");
	for (have = bpf_map_get_next_key(ports_fd, NULL, &next) == 0; have;
	     have = bpf_map_get_next_key(ports_fd, &key, &next) == 0) {
		key = next;
		if ((key >> 16) == SMCO_PORT_REMOTE && (cfg.flags & SMCO_CFG_PORTS)) {
			printf("%s%u", sep, key & 0xffff);
			sep = ",";
		}
	}
	printf("]}");
	close(cfg_fd);
	close(ports_fd);
}

/* ---- connections ---- */

/* Parses IP:PORT or [IP6]:PORT into the key's local or remote half (v4-mapped folded to v4). */
static void parse_endpoint(const char *s, struct smco_key *k, int remote)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	size_t hl;
	__u32 addr[4] = {};
	__u16 family;

	if (!colon)
		die("endpoint %s: expected IP:PORT", s);
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		die("endpoint %s: bad address", s);
	memcpy(host, s, hl);
	host[hl] = 0;
	if (inet_pton(AF_INET, host, &addr[0]) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		family = AF_INET6;
		if (addr[0] == 0 && addr[1] == 0 && addr[2] == htonl(0xffff)) {
			family = AF_INET;
			addr[0] = addr[3];
			addr[1] = addr[2] = addr[3] = 0;
		}
	} else {
		die("endpoint %s: bad address", s);
	}
	if (k->family && k->family != family)
		die("local and remote address families differ");
	k->family = family;
	memcpy(remote ? k->raddr : k->laddr, addr, sizeof(addr));
	*(remote ? &k->rport : &k->lport) = (__u16)parse_num(colon + 1, 65535, "port");
}

static void format_endpoint(char *buf, size_t len, __u16 family, const __u32 *addr, __u16 port)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

static double age_sec(__u64 ktime_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec * 1e9 + ts.tv_nsec - (double)ktime_ns) / 1e9;
}

static void print_conn(const struct smco_key *k, const struct smco_val *v)
{
	char l[INET6_ADDRSTRLEN + 8], r[INET6_ADDRSTRLEN + 8];

	format_endpoint(l, sizeof(l), k->family, k->laddr, k->lport);
	format_endpoint(r, sizeof(r), k->family, k->raddr, k->rport);
	printf("{\"local\":\"%s\",\"remote\":\"%s\"", l, r);
	if (!v) {
		printf(",\"found\":false}");
		return;
	}
	printf(",\"found\":true,\"flags\":%u,\"role\":\"%s\",\"local_sent\":%s,\"peer_seen\":%s,"
	       "\"peer_sent\":%s,\"age_s\":%.3f}",
	       v->flags, v->flags & SMCO_F_PASSIVE ? "passive" : "active",
	       v->flags & SMCO_F_LOCAL_SENT ? "true" : "false", v->flags & SMCO_F_PEER_SEEN ? "true" : "false",
	       v->flags & SMCO_F_PEER_SENT ? "true" : "false", age_sec(v->ktime_ns));
}

static void dump_conns(void)
{
	int fd = pinned_fd(SMCO_MAP_CONNS, 1);
	struct smco_key key, next;
	struct smco_val v;
	const char *sep = "";
	int have;

	printf("{\"conns\":[");
	for (have = bpf_map_get_next_key(fd, NULL, &next) == 0; have;
	     have = bpf_map_get_next_key(fd, &key, &next) == 0) {
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue; /* evicted meanwhile */
		fputs(sep, stdout);
		print_conn(&key, &v);
		sep = ",";
	}
	printf("]}\n");
	close(fd);
}

static void print_stats(void)
{
	static const char *names[] = SMCO_STAT_NAMES;
	int fd = pinned_fd(SMCO_MAP_STATS, 1);
	__u32 i;
	__u64 v;

	printf("{");
	for (i = 0; i < SMCO_STAT_MAX; i++) {
		v = 0;
		bpf_map_lookup_elem(fd, &i, &v);
		printf("%s\"%s\":%llu", i ? "," : "", names[i], (unsigned long long)v);
	}
	printf("}\n");
	close(fd);
}

static void unload(void)
{
	static const char *names[] = { SMCO_PIN_PROG, SMCO_MAP_CFG, SMCO_MAP_PORTS, SMCO_MAP_CONNS,
				       SMCO_MAP_STATS, SMCO_MAP_SKIP };
	char path[PATH_MAX];
	const char *sep = "";
	size_t i;

	printf("{\"unpinned\":[");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		pin_path(path, sizeof(path), names[i]);
		if (unlink(path) == 0) {
			printf("%s\"%s\"", sep, names[i]);
			sep = ",";
		} else if (errno != ENOENT) {
			die("unlink %s: %s", path, strerror(errno));
		}
	}
	printf("]}\n");
}

static void usage(void)
{
	fputs("usage: smc-option-loader [--pin DIR] [--obj FILE] [-v] COMMAND\n"
	      "  attach CGROUP [FILTER...]   load+pin if needed, attach, set filters (default --all)\n"
	      "  detach CGROUP\n"
	      "  status CGROUP\n"
	      "  config [FILTER...]          show, or replace the filters\n"
	      "  query LOCAL REMOTE          IP:PORT or [IP6]:PORT as seen by the local socket\n"
	      "  dump | stats | unload\n"
	      "FILTER: --all | --mark VALUE[/MASK] | --lport PORT | --rport PORT\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1, lock, prog_fd, cg_fd, loaded;
	struct filters f;
	const char *cmd;
	__u32 id, cnt;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin_dir = argv[++i];
		else if (!strcmp(argv[i], "--obj") && i + 1 < argc)
			obj_path = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else
			usage();
		i++;
	}
	if (i >= argc)
		usage();
	libbpf_set_print(libbpf_log);
	cmd = argv[i++];

	if (!strcmp(cmd, "attach") && i < argc) {
		const char *cg = argv[i++];

		parse_filters(argc - i, argv + i, &f);
		lock = lock_pin_dir();
		prog_fd = load_prog(&loaded);
		if (!f.given)
			f.cfg.flags = SMCO_CFG_ALL;
		write_config(&f);
		cg_fd = open_cgroup(cg);
		if (bpf_prog_attach(prog_fd, cg_fd, BPF_CGROUP_SOCK_OPS, BPF_F_ALLOW_MULTI) && errno != EEXIST)
			die("attach to %s: %s", cg, strerror(errno));
		id = prog_id(prog_fd);
		if (!attached(cg_fd, id, &cnt))
			die("attach to %s: program %u not listed afterwards", cg, id);
		printf("{\"cgroup\":\"%s\",\"prog_id\":%u,\"loaded\":%s,\"sock_ops_progs\":%u,\"config\":", cg, id,
		       loaded ? "true" : "false", cnt);
		print_config();
		printf("}\n");
		close(lock);
	} else if ((!strcmp(cmd, "detach") || !strcmp(cmd, "status")) && i + 1 == argc) {
		const char *cg = argv[i];
		int was;

		prog_fd = pinned_fd(SMCO_PIN_PROG, !strcmp(cmd, "detach"));
		cg_fd = open_cgroup(cg);
		if (prog_fd < 0) {
			printf("{\"cgroup\":\"%s\",\"loaded\":false,\"attached\":false}\n", cg);
			return 0;
		}
		id = prog_id(prog_fd);
		was = attached(cg_fd, id, &cnt);
		if (!strcmp(cmd, "detach") && was && bpf_prog_detach2(prog_fd, cg_fd, BPF_CGROUP_SOCK_OPS))
			die("detach from %s: %s", cg, strerror(errno));
		if (!strcmp(cmd, "detach"))
			printf("{\"cgroup\":\"%s\",\"prog_id\":%u,\"detached\":%s}\n", cg, id, was ? "true" : "false");
		else
			printf("{\"cgroup\":\"%s\",\"loaded\":true,\"prog_id\":%u,\"attached\":%s,\"sock_ops_progs\":%u}\n",
			       cg, id, was ? "true" : "false", cnt);
	} else if (!strcmp(cmd, "config")) {
		if (parse_filters(argc - i, argv + i, &f)) {
			lock = lock_pin_dir();
			write_config(&f);
			close(lock);
		}
		print_config();
		printf("\n");
	} else if (!strcmp(cmd, "query") && i + 2 == argc) {
		struct smco_key k = {};
		struct smco_val v;
		int fd = pinned_fd(SMCO_MAP_CONNS, 1);

		parse_endpoint(argv[i], &k, 0);
		parse_endpoint(argv[i + 1], &k, 1);
		print_conn(&k, bpf_map_lookup_elem(fd, &k, &v) == 0 ? &v : NULL);
		printf("\n");
	} else if (!strcmp(cmd, "dump") && i == argc) {
		dump_conns();
	} else if (!strcmp(cmd, "stats") && i == argc) {
		print_stats();
	} else if (!strcmp(cmd, "unload") && i == argc) {
		unload();
	} else {
		usage();
	}
	return 0;
}
