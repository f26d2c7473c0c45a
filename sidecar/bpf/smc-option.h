/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the sock_ops program (smc_option.bpf.c), its loader (smc-option-loader.c) and any
 * user-space reader of the pinned maps (the sidecar's native addon, the lab's smc-opt-probe):
 * map layouts, flag bits and pin names. Plain fixed-size types only, no pointers, so the same
 * bytes mean the same thing on both sides. See docs/smc-option.md.
 */
#ifndef SMC_OPTION_H
#define SMC_OPTION_H

#include <linux/types.h>

/* The TCP experimental option by which SYN and SYN-ACK announce SMC (RFC 7609, RFC 6994). */
#define SMCO_TCPOPT_EXP 254
#define SMCO_TCPOLEN 6
#define SMCO_EXID 0xE2D4C3D9u /* "SMCR" in EBCDIC, big-endian on the wire */

/* Default bpffs directory for the pinned program and maps (loader --pin changes it). */
#define SMCO_PIN_DIR "/sys/fs/bpf/smc"
/* Pinned object names under the pin directory (the maps are pinned by libbpf under their own
 * names, LIBBPF_PIN_BY_NAME). */
#define SMCO_PIN_PROG "smc_option_prog"
#define SMCO_MAP_CFG "smco_cfg"
#define SMCO_MAP_PORTS "smco_ports"
#define SMCO_MAP_CONNS "smco_conns"
#define SMCO_MAP_STATS "smco_stats"
#define SMCO_MAP_SKIP "smco_skip"

/*
 * smco_cfg (array, one entry): which sockets of an attached cgroup take part. A socket is
 * selected when any enabled criterion matches; flags == 0 selects nothing. The cgroup the
 * program is attached to is the outer scope: sockets of other cgroups never see the program.
 */
#define SMCO_CFG_ALL 0x1   /* every TCP socket of the cgroup */
#define SMCO_CFG_MARK 0x2  /* SO_MARK & mark_mask == mark */
#define SMCO_CFG_PORTS 0x4 /* local or remote port listed in smco_ports */

struct smco_cfg {
	__u32 flags;
	__u32 mark;
	__u32 mark_mask;
	__u32 reserved;
};

/* smco_ports (hash): key = SMCO_PORT_KEY(dir, port), value = __u8 1. A listener is matched by
 * its local port; an active socket by its local port (if it bound one) or its remote port. */
#define SMCO_PORT_LOCAL 1
#define SMCO_PORT_REMOTE 2
#define SMCO_PORT_KEY(dir, port) ((((__u32)(dir)) << 16) | ((__u32)(port) & 0xffff))

/*
 * smco_conns (LRU hash): one entry per handshake of a selected socket, keyed by the 4-tuple as
 * the local socket sees it. IPv4 (also IPv4-mapped IPv6 of a dual-stack socket) is stored as
 * family AF_INET with the address in laddr[0] / raddr[0] and the other words zero. Addresses in
 * network byte order, ports in host byte order, padding zero. Written at SYN / SYN-ACK time and
 * when the handshake completes; a new handshake on the same 4-tuple overwrites the entry.
 */
struct smco_key {
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u32 laddr[4];
	__u32 raddr[4];
};

#define SMCO_F_LOCAL_SENT 0x1 /* our SYN / SYN-ACK carried the option */
#define SMCO_F_PEER_SENT 0x2  /* the peer's SYN / SYN-ACK carried the option */
#define SMCO_F_PEER_SEEN 0x4  /* the peer's SYN / SYN-ACK was inspected: PEER_SENT is final */
#define SMCO_F_PASSIVE 0x8    /* we are the server (accepted connection) */

/*
 * smco_skip (LRU hash): destinations whose SYNs must not carry the option until `until_ns`
 * (CLOCK_MONOTONIC), written by user space when a peer echoed the option but did not speak CLC
 * (a middlebox or a broken stack): its next connections stay plain TCP from the first segment.
 * Address as in smco_key (IPv4 in addr[0]), port in host byte order, padding zero.
 */
struct smco_peer {
	__u16 family;
	__u16 port;
	__u32 addr[4];
};

struct smco_skip_val {
	__u64 until_ns;
};

struct smco_val {
	__u32 flags;
	__u32 reserved;
	__u64 ktime_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the last update */
};

/* smco_stats (array of __u64 counters). */
enum smco_stat {
	SMCO_STAT_SELECTED,        /* sockets selected at listen() / connect() */
	SMCO_STAT_SYN_WRITTEN,     /* SYNs that carried the option */
	SMCO_STAT_SYNACK_WRITTEN,  /* SYN-ACKs that carried the option */
	SMCO_STAT_SYNACK_PLAIN,    /* SYN-ACKs of selected listeners left alone: SYN had no option */
	SMCO_STAT_PEER_SYN_OPT,    /* received SYNs (selected listeners) with the option */
	SMCO_STAT_PEER_SYNACK_OPT, /* received SYN-ACKs (selected connects) with the option */
	SMCO_STAT_PEER_SYNACK_PLAIN, /* received SYN-ACKs (selected connects) without it */
	SMCO_STAT_WRITE_ERR,       /* bpf_reserve_hdr_opt / bpf_store_hdr_opt failed (no room) */
	SMCO_STAT_SYNACK_NO_SYN,   /* SYN-ACKs (retransmissions) sent without the SYN at hand:
				    * decided from the connection's map entry */
	SMCO_STAT_SKIPPED,         /* connects left alone: the destination is in smco_skip */
	SMCO_STAT_MAX,
};

#define SMCO_STAT_NAMES                                                                       \
	{ "selected", "syn_written", "synack_written", "synack_plain", "peer_syn_opt",         \
	  "peer_synack_opt", "peer_synack_plain", "write_err", "synack_no_syn", "skipped" }

#endif
