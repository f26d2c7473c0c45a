// SPDX-License-Identifier: Apache-2.0
/*
 * sock_ops program that lets a user-space SMC-R implementation (the sidecar) take part in the
 * kernel's SMC handshake trigger: it writes the SMC experimental TCP option (kind 254, length 6,
 * ExID 0xE2D4C3D9, RFC 7609 / RFC 6994) on the SYN and SYN-ACK of selected sockets of the cgroup
 * it is attached to, and records per connection whether the peer's SYN / SYN-ACK carried it.
 *
 * Kernel SMC (net/smc) attempts CLC only when the peer announced SMC in the TCP handshake:
 * a kernel SMC client whose SYN-ACK lacks the option falls back with 0x03010000 (PEERNOSMC)
 * before sending a CLC Proposal; a kernel SMC server does the same when the SYN lacks it.
 *
 *   TCP_LISTEN_CB / TCP_CONNECT_CB  select the socket (smco_cfg: all, SO_MARK, ports; a connect
 *                                   to a destination in smco_skip never) and set
 *                                   BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG on it
 *   HDR_OPT_LEN_CB                  SYN: reserve 6 bytes; SYN-ACK: reserve them only if the SYN
 *                                   carried the option (like the kernel's own SMC listener)
 *   WRITE_HDR_OPT_CB                store the option, record LOCAL_SENT
 *   ACTIVE_ESTABLISHED_CB           look for the option in the SYN-ACK (skb_data), record
 *                                   PEER_SENT, clear the flag (no callbacks for data segments)
 *   PASSIVE_ESTABLISHED_CB          clear the flag the child inherited from the listener
 *
 * The peer's option is read with bpf_load_hdr_opt() where the handshake is completed rather
 * than with BPF_SOCK_OPS_PARSE_HDR_OPT_CB: that callback only sees segments of established
 * connections, and with the smc module loaded the kernel parses the SMC option itself, so it
 * is never "unknown" (BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG would not fire).
 *
 * Build: sidecar/bpf/build.sh (clang -target bpf, UAPI headers + libbpf's bpf_helpers.h only:
 * no vmlinux.h, no CO-RE; every field used is part of the stable struct bpf_sock_ops ABI).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "smc-option.h"

#define AF_INET 2
#define AF_INET6 10
#define TCPHDR_SYN 0x02
#define TCPHDR_ACK 0x10
#define ENOENT 2
#define ENOMSG 42

char LICENSE[] SEC("license") = "Apache-2.0";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct smco_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} smco_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} smco_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct smco_key);
	__type(value, struct smco_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} smco_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct smco_peer);
	__type(value, struct smco_skip_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} smco_skip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SMCO_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} smco_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&smco_stats, &idx);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* The option as it goes on the wire; also the search key of bpf_load_hdr_opt() (kind 254,
 * kind-length 6 = a 4-byte magic). */
static __always_inline void smc_opt_bytes(__u8 *b)
{
	b[0] = SMCO_TCPOPT_EXP;
	b[1] = SMCO_TCPOLEN;
	b[2] = (SMCO_EXID >> 24) & 0xff;
	b[3] = (SMCO_EXID >> 16) & 0xff;
	b[4] = (SMCO_EXID >> 8) & 0xff;
	b[5] = SMCO_EXID & 0xff;
}

/* 4-tuple of the socket or request socket; IPv4-mapped IPv6 is folded into AF_INET. */
static __always_inline int make_key(struct bpf_sock_ops *skops, struct smco_key *k)
{
	__u32 family = skops->family;

	__builtin_memset(k, 0, sizeof(*k));
	k->lport = (__u16)skops->local_port;
	k->rport = (__u16)bpf_ntohl(skops->remote_port);
	if (family == AF_INET) {
		k->family = AF_INET;
		k->laddr[0] = skops->local_ip4;
		k->raddr[0] = skops->remote_ip4;
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	k->laddr[0] = skops->local_ip6[0];
	k->laddr[1] = skops->local_ip6[1];
	k->laddr[2] = skops->local_ip6[2];
	k->laddr[3] = skops->local_ip6[3];
	k->raddr[0] = skops->remote_ip6[0];
	k->raddr[1] = skops->remote_ip6[1];
	k->raddr[2] = skops->remote_ip6[2];
	k->raddr[3] = skops->remote_ip6[3];
	if (k->raddr[0] == 0 && k->raddr[1] == 0 && k->raddr[2] == bpf_htonl(0xffff)) {
		k->family = AF_INET;
		k->laddr[0] = k->laddr[3];
		k->raddr[0] = k->raddr[3];
		k->laddr[1] = k->laddr[2] = k->laddr[3] = 0;
		k->raddr[1] = k->raddr[2] = k->raddr[3] = 0;
	} else {
		k->family = AF_INET6;
	}
	return 0;
}

/* Sets `set` (and clears `clear`) in the connection's entry; `reset` starts a fresh entry. */
static __always_inline void conn_update(struct bpf_sock_ops *skops, __u32 set, __u32 clear, int reset)
{
	struct smco_key k;
	struct smco_val v = {};
	struct smco_val *old;

	if (make_key(skops, &k))
		return;
	if (!reset) {
		old = bpf_map_lookup_elem(&smco_conns, &k);
		if (old)
			v.flags = old->flags;
	}
	v.flags = (v.flags & ~clear) | set;
	v.ktime_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&smco_conns, &k, &v, BPF_ANY);
}

/* Whether user space asked to keep the option off connects to this destination for now. */
static __always_inline int skipped(struct bpf_sock_ops *skops)
{
	struct smco_key k;
	struct smco_peer p;
	struct smco_skip_val *v;

	if (make_key(skops, &k))
		return 0;
	__builtin_memset(&p, 0, sizeof(p));
	p.family = k.family;
	p.port = k.rport;
	p.addr[0] = k.raddr[0];
	p.addr[1] = k.raddr[1];
	p.addr[2] = k.raddr[2];
	p.addr[3] = k.raddr[3];
	v = bpf_map_lookup_elem(&smco_skip, &p);
	if (!v)
		return 0;
	if (bpf_ktime_get_ns() < v->until_ns)
		return 1;
	bpf_map_delete_elem(&smco_skip, &p);
	return 0;
}

static __always_inline int selected(struct bpf_sock_ops *skops)
{
	__u32 zero = 0, key;
	struct smco_cfg *cfg = bpf_map_lookup_elem(&smco_cfg, &zero);
	struct bpf_sock *sk;

	if (!cfg)
		return 0;
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 0;
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB && skipped(skops)) {
		count(SMCO_STAT_SKIPPED);
		return 0;
	}
	if (cfg->flags & SMCO_CFG_ALL)
		return 1;
	if (cfg->flags & SMCO_CFG_MARK) {
		sk = skops->sk;
		if (sk && (sk->mark & cfg->mark_mask) == cfg->mark)
			return 1;
	}
	if (cfg->flags & SMCO_CFG_PORTS) {
		key = SMCO_PORT_KEY(SMCO_PORT_LOCAL, skops->local_port);
		if (bpf_map_lookup_elem(&smco_ports, &key))
			return 1;
		if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
			key = SMCO_PORT_KEY(SMCO_PORT_REMOTE, bpf_ntohl(skops->remote_port));
			if (bpf_map_lookup_elem(&smco_ports, &key))
				return 1;
		}
	}
	return 0;
}

/*
 * Whether this SYN-ACK gets the option: only when the SYN had it (RFC 7609: the server echoes
 * the option). The SYN is the just-received one (syn_skb) or, for a retransmitted SYN-ACK, the
 * listener's saved SYN (TCP_SAVE_SYN); without either, the entry written for the first SYN-ACK
 * decides, and without that the option is written (an unknown ExID is ignored by any stack).
 * *peer is set to 1 / 0 when the SYN was inspected, -1 when it was not available.
 */
static __always_inline int synack_wants_option(struct bpf_sock_ops *skops, int *peer)
{
	__u8 opt[SMCO_TCPOLEN];
	struct smco_key k;
	struct smco_val *v;
	long r;

	smc_opt_bytes(opt);
	r = bpf_load_hdr_opt(skops, opt, sizeof(opt), BPF_LOAD_HDR_OPT_TCP_SYN);
	if (r > 0) {
		*peer = 1;
		return 1;
	}
	if (r != -ENOENT) {
		*peer = 0;
		return 0;
	}
	*peer = -1;
	if (make_key(skops, &k) == 0) {
		v = bpf_map_lookup_elem(&smco_conns, &k);
		if (v && (v->flags & SMCO_F_PEER_SEEN))
			return (v->flags & SMCO_F_PEER_SENT) != 0;
	}
	return 1;
}

static __always_inline void hdr_opt_len(struct bpf_sock_ops *skops)
{
	__u8 tcp_flags = skops->skb_tcp_flags;
	int peer;

	if (!(tcp_flags & TCPHDR_SYN))
		return;
	if (tcp_flags & TCPHDR_ACK) {
		int want = synack_wants_option(skops, &peer);

		if (peer == 1) {
			count(SMCO_STAT_PEER_SYN_OPT);
			conn_update(skops, SMCO_F_PASSIVE | SMCO_F_PEER_SEEN | SMCO_F_PEER_SENT, 0, 1);
		} else if (peer == 0) {
			conn_update(skops, SMCO_F_PASSIVE | SMCO_F_PEER_SEEN, 0, 1);
		} else {
			count(SMCO_STAT_SYNACK_NO_SYN);
		}
		if (!want) {
			count(SMCO_STAT_SYNACK_PLAIN);
			return;
		}
	}
	if (bpf_reserve_hdr_opt(skops, SMCO_TCPOLEN, 0))
		count(SMCO_STAT_WRITE_ERR);
}

static __always_inline void write_hdr_opt(struct bpf_sock_ops *skops)
{
	__u8 tcp_flags = skops->skb_tcp_flags;
	__u8 opt[SMCO_TCPOLEN];
	int peer;
	long r;

	if (!(tcp_flags & TCPHDR_SYN))
		return;
	if ((tcp_flags & TCPHDR_ACK) && !synack_wants_option(skops, &peer))
		return;
	smc_opt_bytes(opt);
	r = bpf_store_hdr_opt(skops, opt, sizeof(opt), 0);
	if (r && r != -17 /* EEXIST: the kernel's own SMC (an AF_SMC clcsock) wrote it */) {
		count(SMCO_STAT_WRITE_ERR);
		return;
	}
	if (tcp_flags & TCPHDR_ACK) {
		count(SMCO_STAT_SYNACK_WRITTEN);
		conn_update(skops, SMCO_F_LOCAL_SENT, 0, 0);
	} else {
		count(SMCO_STAT_SYN_WRITTEN);
		/* A (re)transmitted SYN starts the entry afresh: nothing is known about the peer. */
		conn_update(skops, SMCO_F_LOCAL_SENT, 0, 1);
	}
}

static __always_inline void clear_write_flag(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

SEC("sockops")
int smc_option(struct bpf_sock_ops *skops)
{
	__u8 opt[SMCO_TCPOLEN];
	long r;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (selected(skops)) {
			count(SMCO_STAT_SELECTED);
			bpf_sock_ops_cb_flags_set(skops,
						  skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		}
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		hdr_opt_len(skops);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		write_hdr_opt(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (!(skops->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG))
			break;
		/* skb_data is the SYN-ACK that completed the handshake. */
		smc_opt_bytes(opt);
		r = bpf_load_hdr_opt(skops, opt, sizeof(opt), 0);
		if (r > 0) {
			count(SMCO_STAT_PEER_SYNACK_OPT);
			conn_update(skops, SMCO_F_PEER_SEEN | SMCO_F_PEER_SENT, 0, 0);
		} else {
			count(SMCO_STAT_PEER_SYNACK_PLAIN);
			conn_update(skops, SMCO_F_PEER_SEEN, SMCO_F_PEER_SENT, 0);
		}
		clear_write_flag(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		if (skops->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG)
			clear_write_flag(skops);
		break;
	}
	return 1;
}
