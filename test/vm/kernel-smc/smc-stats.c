/* smc-stats: the kernel's SMC counters and sockets as one JSON object (the equivalent of
 * smc-tools' `smcd stats` / `smcr stats` / `smcss`, which Debian does not package).
 *
 *   smc-stats                 # everything: stats, fallback, sockets, linkgroups, links
 *   smc-stats stats fallback  # only those sections (any of: stats fallback sockets lgr links)
 *
 * Sources:
 *   stats      generic netlink SMC_GEN_NETLINK / SMC_NETLINK_GET_STATS: per technology (smcr,
 *              smcd) handshake successes, rx/tx bytes and calls, buffer and payload histograms
 *   fallback   SMC_NETLINK_GET_FBACK_STATS: fallback totals (server / client) and the count
 *              per reason code (the CLC decline codes, e.g. 0x03030000 "no SMC device")
 *   sockets    sock_diag for AF_SMC (smc_diag): per socket state, mode SMCR | TCP | SMCD,
 *              fallback reason and peer diagnosis, connection cursors, link (RDMA device,
 *              port, GIDs)
 *   lgr/links  SMC_NETLINK_GET_LGR_SMCR / GET_LINK_SMCR: link groups (role, negotiated EID,
 *              peer host) and their links (device, port, GIDs, connection count)
 */
#include "ksmc-nl.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/smc.h>
#include <linux/smc_diag.h>
#include <linux/sock_diag.h>
#include <net/if.h>

#ifndef AF_SMC
#define AF_SMC 43
#endif

static struct ksmc_nl gnl;
static int fam_gen = -1;

static const char *decline_name(uint32_t code)
{
	static const struct {
		uint32_t code;
		const char *name;
	} t[] = {
		{ 0x01010000, "MEM" },	       { 0x02010000, "TIMEOUT_CL" },
		{ 0x02020000, "TIMEOUT_AL" },  { 0x03000000, "CNFERR" },
		{ 0x03010000, "PEERNOSMC" },   { 0x03010001, "ACTIVE" },
		{ 0x03020000, "IPSEC" },       { 0x03030000, "NOSMCDEV" },
		{ 0x03030001, "NOSMCDDEV" },   { 0x03030002, "NOSMCRDEV" },
		{ 0x03030003, "NOISM2SUPP" },  { 0x03030004, "NOV2EXT" },
		{ 0x03030005, "NOV2DEXT" },    { 0x03030006, "NOSEID" },
		{ 0x03030007, "NOSMCD2DEV" },  { 0x03030008, "NOUEID" },
		{ 0x03030009, "RELEASEERR" },  { 0x0303000a, "MAXCONNERR" },
		{ 0x0303000b, "MAXLINKERR" },  { 0x03040000, "MODEUNSUPP" },
		{ 0x03050000, "RMBE_EC" },     { 0x03060000, "OPTUNSUPP" },
		{ 0x03070000, "DIFFPREFIX" },  { 0x03080000, "GETVLANERR" },
		{ 0x03090000, "ISMVLANERR" },  { 0x030a0000, "NOACTLINK" },
		{ 0x030b0000, "NOSRVLINK" },   { 0x030c0000, "VERSMISMAT" },
		{ 0x030d0000, "MAX_DMB" },     { 0x030e0000, "NOROUTE" },
		{ 0x030f0000, "NOINDIRECT" },  { 0x04000000, "SYNCERR" },
		{ 0x05000000, "PEERDECL" },    { 0x09990000, "INTERR" },
		{ 0x09990001, "ERR_RTOK" },    { 0x09990002, "ERR_RDYLNK" },
		{ 0x09990003, "ERR_REGBUF" },
	};
	size_t i;

	if (code == 0)
		return "";
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == code)
			return t[i].name;
	return "?";
}

static void gen_dump(uint8_t cmd, ksmc_cb cb, const char *what)
{
	struct ksmc_req r;
	int rc;

	ksmc_genl_init(&r, fam_gen, cmd, SMC_GENL_FAMILY_VERSION, NLM_F_DUMP);
	rc = ksmc_talk(&gnl, &r, cb, NULL);
	if (rc < 0)
		fprintf(stderr, "smc-stats: %s: %s\n", what, strerror(-rc));
}

/* ---- stats ---- */

static void histogram(const char *key, const struct nlattr *nest)
{
	static const char *names[] = { "", "8K", "16K", "32K", "64K", "128K", "256K", "512K",
				       "1024K", "gt1024K" };
	const struct nlattr *h[SMC_NLA_STATS_PLOAD_MAX + 1];
	int i;

	if (!nest)
		return;
	ksmc_nest_parse(nest, h, SMC_NLA_STATS_PLOAD_MAX);
	ksmc_json_open(key, '{');
	for (i = SMC_NLA_STATS_PLOAD_8K; i <= SMC_NLA_STATS_PLOAD_G_1024K && i < 10; i++)
		ksmc_json_u64(names[i], ksmc_uint(h[i]));
	ksmc_json_close('}');
}

static void rmb_stats(const char *key, const struct nlattr *nest)
{
	const struct nlattr *r[SMC_NLA_STATS_RMB_MAX + 1];

	if (!nest)
		return;
	ksmc_nest_parse(nest, r, SMC_NLA_STATS_RMB_MAX);
	ksmc_json_open(key, '{');
	ksmc_json_u64("size_small_peer", ksmc_uint(r[SMC_NLA_STATS_RMB_SIZE_SM_PEER_CNT]));
	ksmc_json_u64("size_small", ksmc_uint(r[SMC_NLA_STATS_RMB_SIZE_SM_CNT]));
	ksmc_json_u64("full_peer", ksmc_uint(r[SMC_NLA_STATS_RMB_FULL_PEER_CNT]));
	ksmc_json_u64("full", ksmc_uint(r[SMC_NLA_STATS_RMB_FULL_CNT]));
	ksmc_json_u64("reuse", ksmc_uint(r[SMC_NLA_STATS_RMB_REUSE_CNT]));
	ksmc_json_u64("alloc", ksmc_uint(r[SMC_NLA_STATS_RMB_ALLOC_CNT]));
	ksmc_json_u64("downgrade", ksmc_uint(r[SMC_NLA_STATS_RMB_DGRADE_CNT]));
	ksmc_json_close('}');
}

static void tech(const char *key, const struct nlattr *nest)
{
	const struct nlattr *t[SMC_NLA_STATS_T_MAX + 1];

	if (!nest)
		return;
	ksmc_nest_parse(nest, t, SMC_NLA_STATS_T_MAX);
	ksmc_json_open(key, '{');
	ksmc_json_u64("clnt_v1_succ", ksmc_uint(t[SMC_NLA_STATS_T_CLNT_V1_SUCC]));
	ksmc_json_u64("clnt_v2_succ", ksmc_uint(t[SMC_NLA_STATS_T_CLNT_V2_SUCC]));
	ksmc_json_u64("srv_v1_succ", ksmc_uint(t[SMC_NLA_STATS_T_SRV_V1_SUCC]));
	ksmc_json_u64("srv_v2_succ", ksmc_uint(t[SMC_NLA_STATS_T_SRV_V2_SUCC]));
	ksmc_json_u64("rx_bytes", ksmc_uint(t[SMC_NLA_STATS_T_RX_BYTES]));
	ksmc_json_u64("tx_bytes", ksmc_uint(t[SMC_NLA_STATS_T_TX_BYTES]));
	ksmc_json_u64("rx_cnt", ksmc_uint(t[SMC_NLA_STATS_T_RX_CNT]));
	ksmc_json_u64("tx_cnt", ksmc_uint(t[SMC_NLA_STATS_T_TX_CNT]));
	ksmc_json_u64("sendpage_cnt", ksmc_uint(t[SMC_NLA_STATS_T_SENDPAGE_CNT]));
	ksmc_json_u64("splice_cnt", ksmc_uint(t[SMC_NLA_STATS_T_SPLICE_CNT]));
	ksmc_json_u64("cork_cnt", ksmc_uint(t[SMC_NLA_STATS_T_CORK_CNT]));
	ksmc_json_u64("ndly_cnt", ksmc_uint(t[SMC_NLA_STATS_T_NDLY_CNT]));
	ksmc_json_u64("urg_data_cnt", ksmc_uint(t[SMC_NLA_STATS_T_URG_DATA_CNT]));
	histogram("tx_payload", t[SMC_NLA_STATS_T_TXPLOAD_SIZE]);
	histogram("rx_payload", t[SMC_NLA_STATS_T_RXPLOAD_SIZE]);
	histogram("tx_rmb_size", t[SMC_NLA_STATS_T_TX_RMB_SIZE]);
	histogram("rx_rmb_size", t[SMC_NLA_STATS_T_RX_RMB_SIZE]);
	rmb_stats("tx_rmb", t[SMC_NLA_STATS_T_TX_RMB_STATS]);
	rmb_stats("rx_rmb", t[SMC_NLA_STATS_T_RX_RMB_STATS]);
	ksmc_json_close('}');
}

static int stats_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *s[SMC_NLA_STATS_MAX + 1];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_STATS])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_STATS], s, SMC_NLA_STATS_MAX);
	tech("smcr", s[SMC_NLA_STATS_SMCR_TECH]);
	tech("smcd", s[SMC_NLA_STATS_SMCD_TECH]);
	ksmc_json_u64("clnt_hs_err_cnt", ksmc_uint(s[SMC_NLA_STATS_CLNT_HS_ERR_CNT]));
	ksmc_json_u64("srv_hs_err_cnt", ksmc_uint(s[SMC_NLA_STATS_SRV_HS_ERR_CNT]));
	return 0;
}

/* ---- fallback ---- */

#define MAX_RSN 64
static struct {
	int have_totals;
	uint64_t srv_cnt, clnt_cnt;
	int n;
	struct {
		int server;
		uint32_t code;
		uint64_t count;
	} r[MAX_RSN];
} fb;

static int fback_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *f[SMC_NLA_FBACK_STATS_MAX + 1];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_FBACK_STATS])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_FBACK_STATS], f, SMC_NLA_FBACK_STATS_MAX);
	if (f[SMC_NLA_FBACK_STATS_SRV_CNT] || f[SMC_NLA_FBACK_STATS_CLNT_CNT]) {
		fb.have_totals = 1;
		fb.srv_cnt = ksmc_uint(f[SMC_NLA_FBACK_STATS_SRV_CNT]);
		fb.clnt_cnt = ksmc_uint(f[SMC_NLA_FBACK_STATS_CLNT_CNT]);
	}
	if (f[SMC_NLA_FBACK_STATS_RSN_CODE] && fb.n < MAX_RSN) {
		fb.r[fb.n].server = (int)ksmc_uint(f[SMC_NLA_FBACK_STATS_TYPE]);
		fb.r[fb.n].code = (uint32_t)ksmc_uint(f[SMC_NLA_FBACK_STATS_RSN_CODE]);
		fb.r[fb.n].count = ksmc_uint(f[SMC_NLA_FBACK_STATS_RSN_CNT]);
		fb.n++;
	}
	return 0;
}

static void fallback_side(const char *key, int server)
{
	int i;

	ksmc_json_open(key, '[');
	for (i = 0; i < fb.n; i++) {
		if (fb.r[i].server != server)
			continue;
		ksmc_json_open(NULL, '{');
		ksmc_json_hex32("code", fb.r[i].code);
		ksmc_json_str("name", decline_name(fb.r[i].code));
		ksmc_json_u64("count", fb.r[i].count);
		ksmc_json_close('}');
	}
	ksmc_json_close(']');
}

static void fallback(void)
{
	uint64_t srv = 0, clnt = 0;
	int i;

	gen_dump(SMC_NETLINK_GET_FBACK_STATS, fback_cb, "fallback stats");
	for (i = 0; i < fb.n; i++) {
		if (fb.r[i].server)
			srv += fb.r[i].count;
		else
			clnt += fb.r[i].count;
	}
	ksmc_json_open("fallback", '{');
	/* The kernel reports the totals only along with a reason entry. */
	ksmc_json_u64("srv_cnt", fb.have_totals ? fb.srv_cnt : 0);
	ksmc_json_u64("clnt_cnt", fb.have_totals ? fb.clnt_cnt : 0);
	ksmc_json_u64("srv_rsn_sum", srv);
	ksmc_json_u64("clnt_rsn_sum", clnt);
	fallback_side("server", 1);
	fallback_side("client", 0);
	ksmc_json_close('}');
}

/* ---- sockets (smc_diag) ---- */

static const char *smc_state(int s)
{
	switch (s) {
	case 1: return "ACTIVE";
	case 2: return "INIT";
	case 7: return "CLOSED";
	case 10: return "LISTEN";
	case 20: return "PEERCLOSEWAIT1";
	case 21: return "PEERCLOSEWAIT2";
	case 22: return "APPCLOSEWAIT1";
	case 23: return "APPCLOSEWAIT2";
	case 24: return "APPFINCLOSEWAIT";
	case 25: return "PEERFINCLOSEWAIT";
	case 26: return "PEERABORTWAIT";
	case 27: return "PROCESSABORT";
	}
	return "?";
}

static void addr(const char *key, const __be32 a[4], __be16 port)
{
	char ip[INET6_ADDRSTRLEN] = "", b[INET6_ADDRSTRLEN + 16];

	if (!a[1] && !a[2] && !a[3])
		inet_ntop(AF_INET, a, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
	snprintf(b, sizeof(b), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, ntohs(port));
	ksmc_json_str(key, b);
}

static void cursor(const char *key, const struct smc_diag_cursor *c)
{
	char b[32];

	snprintf(b, sizeof(b), "%u:%u", c->wrap, c->count);
	ksmc_json_str(key, b);
}

static int diag_cb(const struct nlmsghdr *h, void *arg)
{
	const struct smc_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *tb[SMC_DIAG_MAX + 1];
	static const char *modes[] = { "SMCR", "TCP", "SMCD" };
	char b[128];

	(void)arg;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;
	ksmc_parse(tb, SMC_DIAG_MAX, (const char *)m + NLMSG_ALIGN(sizeof(*m)),
		   (int)h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*m))));
	ksmc_json_open(NULL, '{');
	ksmc_json_u64("family", m->diag_family);
	ksmc_json_str("state", smc_state(m->diag_state));
	ksmc_json_str("mode", m->diag_mode < 3 ? modes[m->diag_mode] : "?");
	addr("local", m->id.idiag_src, m->id.idiag_sport);
	addr("peer", m->id.idiag_dst, m->id.idiag_dport);
	ksmc_json_u64("uid", m->diag_uid);
	ksmc_json_u64("inode", m->diag_inode);
	if (tb[SMC_DIAG_SHUTDOWN])
		ksmc_json_u64("shutdown", ksmc_uint(tb[SMC_DIAG_SHUTDOWN]));
	if (tb[SMC_DIAG_FALLBACK] &&
	    ksmc_len(tb[SMC_DIAG_FALLBACK]) >= (int)sizeof(struct smc_diag_fallback)) {
		struct smc_diag_fallback f;
		memcpy(&f, ksmc_data(tb[SMC_DIAG_FALLBACK]), sizeof(f));
		ksmc_json_hex32("fallback_reason", f.reason);
		ksmc_json_str("fallback_name", decline_name(f.reason));
		ksmc_json_hex32("peer_diagnosis", f.peer_diagnosis);
		ksmc_json_str("peer_diagnosis_name", decline_name(f.peer_diagnosis));
	}
	if (tb[SMC_DIAG_CONNINFO] &&
	    ksmc_len(tb[SMC_DIAG_CONNINFO]) >= (int)sizeof(struct smc_diag_conninfo)) {
		struct smc_diag_conninfo c;
		memcpy(&c, ksmc_data(tb[SMC_DIAG_CONNINFO]), sizeof(c));
		ksmc_json_open("conn", '{');
		ksmc_json_u64("token", c.token);
		ksmc_json_u64("sndbuf_size", c.sndbuf_size);
		ksmc_json_u64("rmbe_size", c.rmbe_size);
		ksmc_json_u64("peer_rmbe_size", c.peer_rmbe_size);
		cursor("rx_prod", &c.rx_prod);
		cursor("rx_cons", &c.rx_cons);
		cursor("tx_prod", &c.tx_prod);
		cursor("tx_cons", &c.tx_cons);
		cursor("tx_sent", &c.tx_sent);
		cursor("tx_fin", &c.tx_fin);
		ksmc_json_close('}');
	}
	if (tb[SMC_DIAG_LGRINFO] &&
	    ksmc_len(tb[SMC_DIAG_LGRINFO]) >= (int)sizeof(struct smc_diag_lgrinfo)) {
		struct smc_diag_lgrinfo l;
		memcpy(&l, ksmc_data(tb[SMC_DIAG_LGRINFO]), sizeof(l));
		ksmc_json_open("link", '{');
		ksmc_json_u64("role", l.role);
		ksmc_json_u64("link_id", l.lnk[0].link_id);
		snprintf(b, sizeof(b), "%.*s", (int)sizeof(l.lnk[0].ibname), l.lnk[0].ibname);
		ksmc_json_str("ibdev", b);
		ksmc_json_u64("ibport", l.lnk[0].ibport);
		snprintf(b, sizeof(b), "%.*s", (int)sizeof(l.lnk[0].gid), l.lnk[0].gid);
		ksmc_json_str("gid", b);
		snprintf(b, sizeof(b), "%.*s", (int)sizeof(l.lnk[0].peer_gid), l.lnk[0].peer_gid);
		ksmc_json_str("peer_gid", b);
		ksmc_json_close('}');
	}
	ksmc_json_close('}');
	return 0;
}

static void sockets(void)
{
	struct ksmc_nl dn;
	struct ksmc_req r;
	struct smc_diag_req q;
	int rc;

	ksmc_json_open("sockets", '[');
	rc = ksmc_nl_open(&dn, NETLINK_SOCK_DIAG);
	if (rc == 0) {
		memset(&q, 0, sizeof(q));
		q.diag_family = AF_SMC;
		q.diag_ext = (1 << (SMC_DIAG_CONNINFO - 1)) | (1 << (SMC_DIAG_LGRINFO - 1)) |
			     (1 << (SMC_DIAG_SHUTDOWN - 1));
		ksmc_req_init(&r, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP);
		ksmc_req_data(&r, &q, sizeof(q));
		rc = ksmc_talk(&dn, &r, diag_cb, NULL);
		close(dn.fd);
	}
	if (rc < 0)
		fprintf(stderr, "smc-stats: smc_diag: %s (is smc_diag loaded?)\n", strerror(-rc));
	ksmc_json_close(']');
}

/* ---- link groups and links ---- */

static int lgr_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *l[SMC_NLA_LGR_R_MAX + 1];
	const struct nlattr *v2[SMC_NLA_LGR_V2_MAX + 1];
	char b[80];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_LGR_SMCR])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_LGR_SMCR], l, SMC_NLA_LGR_R_MAX);
	ksmc_json_open(NULL, '{');
	ksmc_json_hex32("id", (uint32_t)ksmc_uint(l[SMC_NLA_LGR_R_ID]));
	ksmc_json_str("role", ksmc_uint(l[SMC_NLA_LGR_R_ROLE]) ? "SERV" : "CLNT");
	ksmc_json_u64("type", ksmc_uint(l[SMC_NLA_LGR_R_TYPE]));
	ksmc_json_str("pnetid", ksmc_str(l[SMC_NLA_LGR_R_PNETID], b, sizeof(b)));
	ksmc_json_u64("conns", ksmc_uint(l[SMC_NLA_LGR_R_CONNS_NUM]));
	if (l[SMC_NLA_LGR_R_V2_COMMON]) {
		ksmc_nest_parse(l[SMC_NLA_LGR_R_V2_COMMON], v2, SMC_NLA_LGR_V2_MAX);
		ksmc_json_u64("smc_version", ksmc_uint(v2[SMC_NLA_LGR_V2_VER]));
		ksmc_json_u64("smc_release", ksmc_uint(v2[SMC_NLA_LGR_V2_REL]));
		ksmc_json_str("negotiated_eid", ksmc_str(v2[SMC_NLA_LGR_V2_NEG_EID], b, sizeof(b)));
		ksmc_json_str("peer_host", ksmc_str(v2[SMC_NLA_LGR_V2_PEER_HOST], b, sizeof(b)));
	}
	ksmc_json_close('}');
	return 0;
}

static int link_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *l[SMC_NLA_LINK_MAX + 1];
	char b[80], ifname[IF_NAMESIZE] = "";
	unsigned idx;

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_LINK_SMCR])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_LINK_SMCR], l, SMC_NLA_LINK_MAX);
	idx = (unsigned)ksmc_uint(l[SMC_NLA_LINK_NET_DEV]);
	if (idx)
		if_indextoname(idx, ifname);
	ksmc_json_open(NULL, '{');
	ksmc_json_u64("id", ksmc_uint(l[SMC_NLA_LINK_ID]));
	ksmc_json_str("ibdev", ksmc_str(l[SMC_NLA_LINK_IB_DEV], b, sizeof(b)));
	ksmc_json_u64("ibport", ksmc_uint(l[SMC_NLA_LINK_IB_PORT]));
	ksmc_json_str("netdev", ifname);
	ksmc_json_str("gid", ksmc_str(l[SMC_NLA_LINK_GID], b, sizeof(b)));
	ksmc_json_str("peer_gid", ksmc_str(l[SMC_NLA_LINK_PEER_GID], b, sizeof(b)));
	ksmc_json_u64("conns", ksmc_uint(l[SMC_NLA_LINK_CONN_CNT]));
	ksmc_json_u64("state", ksmc_uint(l[SMC_NLA_LINK_STATE]));
	ksmc_json_close('}');
	return 0;
}

enum { S_STATS = 1, S_FALLBACK = 2, S_SOCKETS = 4, S_LGR = 8, S_LINKS = 16 };

int main(int argc, char **argv)
{
	unsigned want = 0;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "stats"))
			want |= S_STATS;
		else if (!strcmp(argv[i], "fallback"))
			want |= S_FALLBACK;
		else if (!strcmp(argv[i], "sockets") || !strcmp(argv[i], "diag"))
			want |= S_SOCKETS;
		else if (!strcmp(argv[i], "lgr"))
			want |= S_LGR;
		else if (!strcmp(argv[i], "links"))
			want |= S_LINKS;
		else {
			fprintf(stderr,
				"usage: smc-stats [stats] [fallback] [sockets] [lgr] [links]\n");
			return 2;
		}
	}
	if (!want)
		want = S_STATS | S_FALLBACK | S_SOCKETS | S_LGR | S_LINKS;

	if (want & (S_STATS | S_FALLBACK | S_LGR | S_LINKS)) {
		rc = ksmc_nl_open(&gnl, NETLINK_GENERIC);
		if (rc == 0)
			fam_gen = ksmc_family(&gnl, SMC_GENL_FAMILY_NAME);
		if (rc < 0 || fam_gen < 0) {
			fprintf(stderr, "smc-stats: generic netlink family %s not found "
					"(is the smc module loaded?)\n",
				SMC_GENL_FAMILY_NAME);
			return 1;
		}
	}
	ksmc_json_open(NULL, '{');
	if (want & S_STATS) {
		ksmc_json_open("stats", '{');
		gen_dump(SMC_NETLINK_GET_STATS, stats_cb, "stats");
		ksmc_json_close('}');
	}
	if (want & S_FALLBACK)
		fallback();
	if (want & S_SOCKETS)
		sockets();
	if (want & S_LGR) {
		ksmc_json_open("linkgroups", '[');
		gen_dump(SMC_NETLINK_GET_LGR_SMCR, lgr_cb, "link groups");
		ksmc_json_close(']');
	}
	if (want & S_LINKS) {
		ksmc_json_open("links", '[');
		gen_dump(SMC_NETLINK_GET_LINK_SMCR, link_cb, "links");
		ksmc_json_close(']');
	}
	ksmc_json_close('}');
	putchar('\n');
	return 0;
}
