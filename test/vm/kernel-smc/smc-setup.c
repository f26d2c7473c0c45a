/* smc-setup: configure the kernel's SMC for SMC-R v2 over a RoCE device (soft-RoCE in the lab).
 *
 * Kernel SMC-R v2 needs, on both peers, a common User EID (generic netlink family
 * "SMC_GEN_NETLINK", SMC_NETLINK_ADD_UEID) and a common pnetid on the netdev and on the RDMA
 * port (family "SMC_PNETID", SMC_PNETID_ADD), because rxe does not tell SMC its netdev.
 * smc-tools (smcr ueid / smc_pnet) does this elsewhere; Debian does not package it.
 *
 *   smc-setup --lab                      # = --ueid KSMC-LAB --pnetid KSMCLAB --netdev $LAB_NETDEV
 *                                        #   --ibdev $LAB_RXE:1 (eth0, rxe0 by default)
 *   smc-setup --ueid EID --pnetid ID --netdev eth0 --ibdev rxe0:1
 *   smc-setup --flush-ueid --flush-pnetid
 *   smc-setup --show                     # JSON: system info, UEIDs, pnet table, SMC-R devices
 *
 * Actions run in this order: flushes, removals, additions, --show. An entry that already exists
 * (EEXIST) is reported and not an error. Exit 0 on success, 1 on a kernel error, 2 on usage.
 */
#include "ksmc-nl.h"

#include <ctype.h>
#include <linux/smc.h>
#include <net/if.h>

#ifndef SMC_MAX_EID_LEN
#define SMC_MAX_EID_LEN 32
#endif
#define PNETID_LEN 16

static struct ksmc_nl nl;
static int fam_gen = -1, fam_pnet = -1;

static void usage(void)
{
	fprintf(stderr,
		"usage: smc-setup [--lab] [--ueid EID]... [--remove-ueid EID]... [--flush-ueid]\n"
		"                 [--pnetid ID [--netdev DEV]... [--ibdev DEV[:PORT]]...]\n"
		"                 [--flush-pnetid] [--show]\n");
	exit(2);
}

static void die_rc(const char *what, int rc)
{
	fprintf(stderr, "smc-setup: %s: %s\n", what, strerror(-rc));
	exit(1);
}

static void families(void)
{
	int rc = ksmc_nl_open(&nl, NETLINK_GENERIC);

	if (rc < 0)
		die_rc("netlink socket", rc);
	fam_gen = ksmc_family(&nl, SMC_GENL_FAMILY_NAME);
	fam_pnet = ksmc_family(&nl, SMCR_GENL_FAMILY_NAME);
	if (fam_gen < 0 || fam_pnet < 0) {
		fprintf(stderr, "smc-setup: generic netlink families %s/%s not found "
				"(is the smc module loaded?)\n",
			SMC_GENL_FAMILY_NAME, SMCR_GENL_FAMILY_NAME);
		exit(1);
	}
}

/* The kernel wants exactly 33 bytes: 32 characters, blank-padded, then NUL; upper case,
 * A-Z 0-9 '.' '-', the first alphanumeric (smc_clc_ueid_valid). */
static void ueid_attr(const char *eid, char out[SMC_MAX_EID_LEN + 1])
{
	size_t n = strlen(eid), i;

	if (n == 0 || n > SMC_MAX_EID_LEN) {
		fprintf(stderr, "smc-setup: UEID must have 1-%d characters: '%s'\n", SMC_MAX_EID_LEN,
			eid);
		exit(2);
	}
	memset(out, ' ', SMC_MAX_EID_LEN);
	for (i = 0; i < n; i++)
		out[i] = (char)toupper((unsigned char)eid[i]);
	out[SMC_MAX_EID_LEN] = 0;
}

static int ueid_cmd(uint8_t cmd, const char *eid)
{
	struct ksmc_req r;
	char attr[SMC_MAX_EID_LEN + 1];

	ksmc_genl_init(&r, fam_gen, cmd, SMC_GENL_FAMILY_VERSION, 0);
	if (eid) {
		ueid_attr(eid, attr);
		ksmc_put(&r, SMC_NLA_EID_TABLE_ENTRY, attr, sizeof(attr));
	}
	return ksmc_talk(&nl, &r, NULL, NULL);
}

static int pnet_add(const char *pnetid, const char *netdev, const char *ibdev, int ibport)
{
	struct ksmc_req r;

	ksmc_genl_init(&r, fam_pnet, SMC_PNETID_ADD, SMCR_GENL_FAMILY_VERSION, 0);
	ksmc_put_str(&r, SMC_PNETID_NAME, pnetid);
	if (netdev)
		ksmc_put_str(&r, SMC_PNETID_ETHNAME, netdev);
	if (ibdev) {
		uint8_t port = (uint8_t)ibport;
		ksmc_put_str(&r, SMC_PNETID_IBNAME, ibdev);
		ksmc_put(&r, SMC_PNETID_IBPORT, &port, 1);
	}
	return ksmc_talk(&nl, &r, NULL, NULL);
}

static int pnet_flush(void)
{
	struct ksmc_req r;

	ksmc_genl_init(&r, fam_pnet, SMC_PNETID_FLUSH, SMCR_GENL_FAMILY_VERSION, 0);
	return ksmc_talk(&nl, &r, NULL, NULL);
}

/* ---- --show ---- */

static int show_sys(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *s[SMC_NLA_SYS_MAX + 1];
	char b[64];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_SYS_INFO])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_SYS_INFO], s, SMC_NLA_SYS_MAX);
	ksmc_json_u64("ver", ksmc_uint(s[SMC_NLA_SYS_VER]));
	ksmc_json_u64("rel", ksmc_uint(s[SMC_NLA_SYS_REL]));
	ksmc_json_u64("ism_v2", ksmc_uint(s[SMC_NLA_SYS_IS_ISM_V2]));
	ksmc_json_u64("smcr_v2", ksmc_uint(s[SMC_NLA_SYS_IS_SMCR_V2]));
	ksmc_json_str("local_host", ksmc_str(s[SMC_NLA_SYS_LOCAL_HOST], b, sizeof(b)));
	ksmc_json_str("seid", ksmc_str(s[SMC_NLA_SYS_SEID], b, sizeof(b)));
	return 0;
}

static int show_ueid(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_NLA_EID_TABLE_MAX + 1];
	char b[SMC_MAX_EID_LEN + 8];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_NLA_EID_TABLE_MAX);
	if (tb[SMC_NLA_EID_TABLE_ENTRY])
		ksmc_json_str(NULL, ksmc_str(tb[SMC_NLA_EID_TABLE_ENTRY], b, sizeof(b)));
	return 0;
}

static int show_pnet(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_PNETID_MAX + 1];
	char b[80];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_PNETID_MAX);
	ksmc_json_open(NULL, '{');
	ksmc_json_str("pnetid", ksmc_str(tb[SMC_PNETID_NAME], b, sizeof(b)));
	ksmc_json_str("netdev", ksmc_str(tb[SMC_PNETID_ETHNAME], b, sizeof(b)));
	ksmc_json_str("ibdev", ksmc_str(tb[SMC_PNETID_IBNAME], b, sizeof(b)));
	ksmc_json_u64("ibport", ksmc_uint(tb[SMC_PNETID_IBPORT]));
	ksmc_json_close('}');
	return 0;
}

static void show_port(const char *key, const struct nlattr *nest)
{
	const struct nlattr *p[SMC_NLA_DEV_PORT_MAX + 1];
	char b[64], ifname[IF_NAMESIZE] = "";
	unsigned idx;

	if (!nest)
		return;
	ksmc_nest_parse(nest, p, SMC_NLA_DEV_PORT_MAX);
	idx = (unsigned)ksmc_uint(p[SMC_NLA_DEV_PORT_NETDEV]);
	if (idx)
		if_indextoname(idx, ifname);
	ksmc_json_open(key, '{');
	ksmc_json_str("pnetid", ksmc_str(p[SMC_NLA_DEV_PORT_PNETID], b, sizeof(b)));
	ksmc_json_u64("pnetid_by_user", ksmc_uint(p[SMC_NLA_DEV_PORT_PNET_USR]));
	ksmc_json_u64("netdev_ifindex", idx);
	ksmc_json_str("netdev", ifname);
	ksmc_json_u64("active", ksmc_uint(p[SMC_NLA_DEV_PORT_STATE]));
	ksmc_json_u64("links", ksmc_uint(p[SMC_NLA_DEV_PORT_LNK_CNT]));
	ksmc_json_close('}');
}

static int show_dev(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[SMC_GEN_MAX + 1], *d[SMC_NLA_DEV_MAX + 1];
	char b[80];

	(void)arg;
	ksmc_genl_parse(h, tb, SMC_GEN_MAX);
	if (!tb[SMC_GEN_DEV_SMCR])
		return 0;
	ksmc_nest_parse(tb[SMC_GEN_DEV_SMCR], d, SMC_NLA_DEV_MAX);
	ksmc_json_open(NULL, '{');
	ksmc_json_str("ibdev", ksmc_str(d[SMC_NLA_DEV_IB_NAME], b, sizeof(b)));
	ksmc_json_u64("critical", ksmc_uint(d[SMC_NLA_DEV_IS_CRIT]));
	show_port("port1", d[SMC_NLA_DEV_PORT]);
	show_port("port2", d[SMC_NLA_DEV_PORT2]);
	ksmc_json_close('}');
	return 0;
}

static void dump(int family, uint8_t cmd, uint8_t version, ksmc_cb cb, const char *what)
{
	struct ksmc_req r;
	int rc;

	ksmc_genl_init(&r, family, cmd, version, NLM_F_DUMP);
	rc = ksmc_talk(&nl, &r, cb, NULL);
	if (rc < 0)
		fprintf(stderr, "smc-setup: dump %s: %s\n", what, strerror(-rc));
}

static void show(void)
{
	ksmc_json_open(NULL, '{');
	ksmc_json_open("sys", '{');
	dump(fam_gen, SMC_NETLINK_GET_SYS_INFO, SMC_GENL_FAMILY_VERSION, show_sys, "sys info");
	ksmc_json_close('}');
	ksmc_json_open("ueids", '[');
	dump(fam_gen, SMC_NETLINK_DUMP_UEID, SMC_GENL_FAMILY_VERSION, show_ueid, "ueids");
	ksmc_json_close(']');
	ksmc_json_open("pnetids", '[');
	dump(fam_pnet, SMC_PNETID_GET, SMCR_GENL_FAMILY_VERSION, show_pnet, "pnet table");
	ksmc_json_close(']');
	ksmc_json_open("smcr_devices", '[');
	dump(fam_gen, SMC_NETLINK_GET_DEV_SMCR, SMC_GENL_FAMILY_VERSION, show_dev, "smcr devices");
	ksmc_json_close(']');
	ksmc_json_close('}');
	putchar('\n');
}

#define MAXN 8

int main(int argc, char **argv)
{
	const char *ueids[MAXN], *rm_ueids[MAXN], *netdevs[MAXN], *ibdevs[MAXN];
	int n_ueid = 0, n_rm = 0, n_net = 0, n_ib = 0;
	int flush_ueid = 0, flush_pnet = 0, want_show = 0, failed = 0, i, rc;
	const char *pnetid = NULL;
	char lab_ib[64];

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

#define TAKE(arr, n)                       \
	do {                               \
		if (!v || (n) >= MAXN)     \
			usage();           \
		(arr)[(n)++] = v;          \
		i++;                       \
	} while (0)
		if (!strcmp(a, "--ueid"))
			TAKE(ueids, n_ueid);
		else if (!strcmp(a, "--remove-ueid"))
			TAKE(rm_ueids, n_rm);
		else if (!strcmp(a, "--netdev"))
			TAKE(netdevs, n_net);
		else if (!strcmp(a, "--ibdev"))
			TAKE(ibdevs, n_ib);
		else if (!strcmp(a, "--pnetid")) {
			if (!v)
				usage();
			pnetid = v;
			i++;
		} else if (!strcmp(a, "--flush-ueid"))
			flush_ueid = 1;
		else if (!strcmp(a, "--flush-pnetid"))
			flush_pnet = 1;
		else if (!strcmp(a, "--show"))
			want_show = 1;
		else if (!strcmp(a, "--lab")) {
			const char *nd = getenv("LAB_NETDEV"), *ib = getenv("LAB_RXE");
			if (n_ueid >= MAXN || n_net >= MAXN || n_ib >= MAXN)
				usage();
			snprintf(lab_ib, sizeof(lab_ib), "%s:1", ib && *ib ? ib : "rxe0");
			ueids[n_ueid++] = "KSMC-LAB";
			pnetid = "KSMCLAB";
			netdevs[n_net++] = nd && *nd ? nd : "eth0";
			ibdevs[n_ib++] = lab_ib;
		} else
			usage();
	}
	if (argc < 2 || ((n_net || n_ib) && !pnetid) || (pnetid && !n_net && !n_ib))
		usage();
	if (pnetid && (strlen(pnetid) == 0 || strlen(pnetid) > PNETID_LEN)) {
		fprintf(stderr, "smc-setup: pnetid must have 1-%d characters\n", PNETID_LEN);
		return 2;
	}
	families();

	if (flush_ueid && (rc = ueid_cmd(SMC_NETLINK_FLUSH_UEID, NULL)) < 0)
		die_rc("flush ueid", rc);
	if (flush_pnet && (rc = pnet_flush()) < 0 && rc != -ENOENT)
		die_rc("flush pnet table", rc);
	for (i = 0; i < n_rm; i++) {
		rc = ueid_cmd(SMC_NETLINK_REMOVE_UEID, rm_ueids[i]);
		if (rc < 0) {
			fprintf(stderr, "smc-setup: remove ueid %s: %s\n", rm_ueids[i], strerror(-rc));
			failed = 1;
		}
	}
	for (i = 0; i < n_ueid; i++) {
		rc = ueid_cmd(SMC_NETLINK_ADD_UEID, ueids[i]);
		if (rc == -EEXIST)
			fprintf(stderr, "smc-setup: ueid %s already set\n", ueids[i]);
		else if (rc < 0) {
			fprintf(stderr, "smc-setup: add ueid %s: %s\n", ueids[i], strerror(-rc));
			failed = 1;
		}
	}
	for (i = 0; i < n_net; i++) {
		rc = pnet_add(pnetid, netdevs[i], NULL, 0);
		if (rc == -EEXIST)
			fprintf(stderr, "smc-setup: netdev %s already has a pnetid\n", netdevs[i]);
		else if (rc < 0) {
			fprintf(stderr, "smc-setup: pnetid %s on %s: %s\n", pnetid, netdevs[i],
				strerror(-rc));
			failed = 1;
		}
	}
	for (i = 0; i < n_ib; i++) {
		char name[64], *colon;
		int port = 1;

		snprintf(name, sizeof(name), "%s", ibdevs[i]);
		colon = strchr(name, ':');
		if (colon) {
			*colon = 0;
			port = atoi(colon + 1);
		}
		rc = pnet_add(pnetid, NULL, name, port);
		if (rc == -EEXIST)
			fprintf(stderr, "smc-setup: %s port %d already has a pnetid\n", name, port);
		else if (rc < 0) {
			fprintf(stderr, "smc-setup: pnetid %s on %s port %d: %s\n", pnetid, name, port,
				strerror(-rc));
			failed = 1;
		}
	}
	if (want_show)
		show();
	return failed;
}
