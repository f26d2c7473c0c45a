/* Minimal netlink / generic netlink / JSON helpers shared by smc-setup and smc-stats.
 *
 * Header-only on purpose: each tool is one `gcc -O2 tool.c` (see build.sh), no library, no
 * libnl. Attribute layouts follow the kernel's uapi (include/uapi/linux/smc.h, smc_diag.h) and
 * net/smc/{smc_netlink,smc_pnet,smc_clc,smc_stats,smc_diag}.c.
 */
#ifndef KSMC_NL_H
#define KSMC_NL_H

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KSMC_RCVBUF (64 * 1024)

struct ksmc_nl {
	int fd;
	uint32_t seq;
};

static int ksmc_nl_open(struct ksmc_nl *n, int proto)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (n->fd < 0)
		return -errno;
	if (bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(n->fd);
		return e;
	}
	n->seq = (uint32_t)getpid() << 8;
	return 0;
}

/* A request under construction: nlmsghdr [+ genlmsghdr] + attributes. */
struct ksmc_req {
	union {
		struct nlmsghdr h;
		char buf[2048];
	};
};

static void ksmc_req_init(struct ksmc_req *r, uint16_t type, uint16_t flags)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_len = NLMSG_LENGTH(0);
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = NLM_F_REQUEST | flags;
}

static void *ksmc_req_tail(struct ksmc_req *r)
{
	return r->buf + NLMSG_ALIGN(r->h.nlmsg_len);
}

static void ksmc_req_data(struct ksmc_req *r, const void *data, size_t len)
{
	memcpy(ksmc_req_tail(r), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + len;
}

static void ksmc_genl_init(struct ksmc_req *r, uint16_t family, uint8_t cmd, uint8_t version,
			   uint16_t flags)
{
	struct genlmsghdr g = { .cmd = cmd, .version = version };

	ksmc_req_init(r, family, flags);
	ksmc_req_data(r, &g, sizeof(g));
}

static void ksmc_put(struct ksmc_req *r, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = ksmc_req_tail(r);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void ksmc_put_str(struct ksmc_req *r, uint16_t type, const char *s)
{
	ksmc_put(r, type, s, strlen(s) + 1);
}

/* Callback per received message (not NLMSG_DONE / NLMSG_ERROR). Return <0 to stop. */
typedef int (*ksmc_cb)(const struct nlmsghdr *h, void *arg);

/* Send the request and read replies until NLMSG_DONE (dumps) or the ACK/error (NLM_F_ACK).
 * Returns 0 or a negative errno (the kernel's, for an error reply). */
static int ksmc_talk(struct ksmc_nl *n, struct ksmc_req *r, ksmc_cb cb, void *arg)
{
	static char buf[KSMC_RCVBUF];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	uint32_t seq = ++n->seq;
	int dump = (r->h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;

	r->h.nlmsg_seq = seq;
	if (!dump)
		r->h.nlmsg_flags |= NLM_F_ACK;
	if (sendto(n->fd, r->buf, r->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(n->fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error; /* 0 = ACK */
			}
			if (cb && cb(h, arg) < 0)
				return -ECANCELED;
		}
	}
}

/* Parse a run of attributes into tb[0..max] (later duplicates win; type masked). */
static void ksmc_parse(const struct nlattr **tb, int max, const void *data, int len)
{
	const struct nlattr *a = data;

	memset(tb, 0, sizeof(*tb) * (max + 1));
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		int type = a->nla_type & NLA_TYPE_MASK;

		if (type <= max)
			tb[type] = a;
		len -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

static const void *ksmc_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static int ksmc_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

/* Attributes of a generic netlink message (after the genlmsghdr). */
static void ksmc_genl_parse(const struct nlmsghdr *h, const struct nlattr **tb, int max)
{
	const char *p = (const char *)NLMSG_DATA(h) + GENL_HDRLEN;

	ksmc_parse(tb, max, p, (int)h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
}

static void ksmc_nest_parse(const struct nlattr *nest, const struct nlattr **tb, int max)
{
	ksmc_parse(tb, max, ksmc_data(nest), ksmc_len(nest));
}

/* Unsigned value of a u8/u16/u32/u64 attribute (by its length); 0 if absent. */
static uint64_t ksmc_uint(const struct nlattr *a)
{
	uint64_t v = 0;

	if (!a)
		return 0;
	switch (ksmc_len(a)) {
	case 1: return *(const uint8_t *)ksmc_data(a);
	case 2: { uint16_t x; memcpy(&x, ksmc_data(a), 2); return x; }
	case 4: { uint32_t x; memcpy(&x, ksmc_data(a), 4); return x; }
	case 8: memcpy(&v, ksmc_data(a), 8); return v;
	}
	return 0;
}

/* String attribute copied into out (NUL-terminated, trailing blanks trimmed). */
static const char *ksmc_str(const struct nlattr *a, char *out, size_t size)
{
	size_t n;

	out[0] = 0;
	if (!a || size == 0)
		return out;
	n = (size_t)ksmc_len(a);
	if (n >= size)
		n = size - 1;
	memcpy(out, ksmc_data(a), n);
	out[n] = 0;
	n = strlen(out);
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = 0;
	return out;
}

/* Generic netlink family id by name (CTRL_CMD_GETFAMILY); negative errno if unknown. */
static int ksmc_family_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];

	ksmc_genl_parse(h, tb, CTRL_ATTR_MAX);
	if (tb[CTRL_ATTR_FAMILY_ID])
		*(int *)arg = (int)ksmc_uint(tb[CTRL_ATTR_FAMILY_ID]);
	return 0;
}

static int ksmc_family(struct ksmc_nl *n, const char *name)
{
	struct ksmc_req r;
	int id = -ENOENT, rc;

	ksmc_genl_init(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
	ksmc_put_str(&r, CTRL_ATTR_FAMILY_NAME, name);
	rc = ksmc_talk(n, &r, ksmc_family_cb, &id);
	return rc < 0 ? rc : id;
}

/* ---- tiny JSON writer: commas and nesting are tracked, strings escaped ---- */
static int ksmc_json_first = 1;

static void ksmc_json_sep(void)
{
	if (!ksmc_json_first)
		putchar(',');
	ksmc_json_first = 0;
}

static void ksmc_json_strval(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void ksmc_json_key(const char *k)
{
	ksmc_json_sep();
	if (k) {
		ksmc_json_strval(k);
		putchar(':');
	}
}

static void ksmc_json_open(const char *k, char bracket)
{
	ksmc_json_key(k);
	putchar(bracket);
	ksmc_json_first = 1;
}

static void ksmc_json_close(char bracket)
{
	putchar(bracket);
	ksmc_json_first = 0;
}

static void ksmc_json_u64(const char *k, uint64_t v)
{
	ksmc_json_key(k);
	printf("%llu", (unsigned long long)v);
}

static void ksmc_json_str(const char *k, const char *v)
{
	ksmc_json_key(k);
	ksmc_json_strval(v);
}

static void ksmc_json_hex32(const char *k, uint32_t v)
{
	char b[16];

	snprintf(b, sizeof(b), "0x%08x", v);
	ksmc_json_str(k, b);
}

#endif
