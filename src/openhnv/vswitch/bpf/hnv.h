/* The openhnv kernel fast path: the one header its programs share.
 *
 * The VFP engine (Python) decides every flow; these programs only execute the
 * unified flows it installs, as GFT executes VFP's. This header holds, in order:
 *
 *   1. the ABI shared with userspace: map keys and values, action codes and
 *      counter numbers (mirrored once each in
 *      openhnv/vswitch/fastpath/layout.py, checked against this object's BTF);
 *   2. the maps, each with who writes it and who reads it;
 *   3. classification: frame -> key -> entry -> "would the kernel execute this
 *      frame?", shared by the tc programs and the socket filters (only
 *      bpf_skb_load_bytes and __sk_buff fields both program types may read), so
 *      a frame is taken by exactly one of the kernel and the Python switch;
 *   4. the actions the tc programs run on a hit: inner edit, VXLAN/NVGRE
 *      encapsulation, decapsulation, redirect, per-entry statistics.
 *
 * Attach points (one file each): tc_port.c (tc ingress of a VM port's veth host
 * end), tc_uplink.c (tc ingress of an uplink), socket_filter.c (SO_ATTACH_BPF on
 * the Python switch's AF_PACKET sockets), xdp_port.c (XDP on a VM port's veth host
 * end: the abuse limits before anything else). qos.h adds the per-port bandwidth caps
 * the tc programs enforce. The Makefile links the three objects
 * into one, hnv_fastpath.o; the maps below are __weak so the linker keeps one
 * copy of each.
 */
#ifndef HNV_FASTPATH_H
#define HNV_FASTPATH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* ------------------------------------------------------------------ 1. ABI */

#define HNV_ACT_ENCAP 1          /* push outer headers, redirect to an uplink */
#define HNV_ACT_DELIVER 2        /* redirect to a local VM port */
#define HNV_ACT_DECAP_DELIVER 3  /* pop outer headers, redirect to a VM port */

#define HNV_F_SET_MACS 0x01  /* inner edit: dst_mac/src_mac replace the inner MACs */
#define HNV_F_DEC_TTL 0x02   /* inner edit: IPv4 TTL - 1 (a TTL <= 1 misses) */
#define HNV_F_VLAN 0x04      /* encap: push an 802.1Q tag with vlan_tci */

#define HNV_ENCAP_VXLAN 1  /* UDP 4789, RFC 7348 */
#define HNV_ENCAP_NVGRE 2  /* GRE key, protocol 0x6558, RFC 7637 */

#define HNV_GEN_UNUSED 0xffffffffu  /* hnv_gen_ref.slot of an unused pair */
#define HNV_MAX_GENS 2
#define HNV_HEADER_MAX 52  /* room for the largest outer template (VXLAN: 50) */

#define HNV_VXLAN_HEADER_LEN 50  /* Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 */
#define HNV_NVGRE_HEADER_LEN 42  /* Ethernet 14 + IPv4 20 + GRE with key 8 */
#define HNV_VXLAN_PORT 4789
#define HNV_VXLAN_FLAG_I 0x08
#define HNV_GRE_KEY_PRESENT 0x2000
#define HNV_NVGRE_PROTOCOL 0x6558
#define HNV_IPV4_MAX_TOTAL 0xffff
#define HNV_IPV4_FRAGMENT 0x3fff  /* MF flag and fragment offset */
#define HNV_VLAN_VID_MASK 0x0fff
#define HNV_VLAN_TAG_LEN 4

#define HNV_TCP_FIN 0x01
#define HNV_TCP_SYN 0x02
#define HNV_TCP_RST 0x04
#define HNV_TCP_SLOW_FLAGS (HNV_TCP_FIN | HNV_TCP_SYN | HNV_TCP_RST)
#define HNV_ICMP_ECHO_REPLY 0
#define HNV_ICMP_ECHO_REQUEST 8

/* What identifies a flow inside a frame: the inner Ethernet addresses and the
 * IPv4 5-tuple. Ports are in host byte order; for ICMP echo, src_port is
 * type << 8 | code and dst_port the echo identifier (as the Python flow key). */
struct hnv_tuple {
	__u8 dst_mac[ETH_ALEN];
	__u8 src_mac[ETH_ALEN];
	__be32 src_ip;
	__be32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 pad[3];
};

/* Key of hnv_port_flows: a frame a VM sent, seen at its port's tc ingress. */
struct hnv_port_key {
	__u32 ifindex;  /* the VM port's veth host end */
	struct hnv_tuple flow;
};

/* Key of hnv_up_flows: a tunnel frame received on an uplink. */
struct hnv_uplink_key {
	__be32 remote_pa;  /* outer IPv4 source */
	__be32 local_pa;   /* outer IPv4 destination, a PA of this host */
	__u32 vsid;        /* VXLAN VNI or NVGRE VSID (24 bits) */
	__u16 vlan_id;     /* 802.1Q VLAN of the outer frame, 0 when untagged */
	__u8 encap;        /* HNV_ENCAP_* */
	__u8 pad;
	struct hnv_tuple flow;  /* of the inner frame */
};

/* An entry is valid while hnv_port_gens[slot] == generation for each used pair. */
struct hnv_gen_ref {
	__u32 slot;
	__u32 generation;
};

/* Per-entry statistics, written by the tc programs only (atomically). */
struct hnv_stats {
	__u64 packets;       /* wire packets: GSO segments count one each */
	__u64 bytes;         /* frame bytes as received (VM port: the frame the VM
			      * sent; uplink: the outer frame, tag included) */
	__u64 last_used_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Value of both flow maps: the compiled transposition of one unified flow. */
struct hnv_flow {
	__u8 action;        /* HNV_ACT_* */
	__u8 flags;         /* HNV_F_* */
	__u8 encap;         /* HNV_ENCAP_* (ENCAP only) */
	__u8 header_len;    /* bytes of header[] used: 50 (VXLAN) or 42 (NVGRE) */
	__u32 ifindex;      /* bpf_redirect target: an uplink or a VM port */
	__u16 mtu;          /* largest IPv4 packet out of ifindex; 0 = unchecked */
	__u16 vlan_tci;     /* HNV_F_VLAN: the outer 802.1Q TCI */
	__u16 csum_partial; /* one's complement sum of the outer IPv4 header with
			     * total length and checksum zero (folded, host order) */
	__u16 entropy;      /* VXLAN UDP source port, or NVGRE FlowID (low 8 bits) */
	struct hnv_gen_ref gens[HNV_MAX_GENS];
	__u8 dst_mac[ETH_ALEN];  /* HNV_F_SET_MACS: new inner destination MAC */
	__u8 src_mac[ETH_ALEN];  /* HNV_F_SET_MACS: new inner source MAC */
	__u8 header[HNV_HEADER_MAX];  /* outer Ethernet/IPv4/UDP+VXLAN or GRE as on
				       * the wire, untagged, lengths and checksum
				       * as for an empty inner frame */
	struct hnv_stats stats;
};

/* Global counters (per CPU), indexed by reason. A miss hands the frame to the
 * Python switch (which got it through its AF_PACKET socket) and drops it from
 * the host kernel; an error drops a frame the kernel had claimed. */
enum hnv_counter {
	HNV_HIT_ENCAP = 0,
	HNV_HIT_DELIVER,
	HNV_HIT_DECAP,
	HNV_MISS_NO_ENTRY,
	HNV_MISS_STALE,       /* a generation of the entry is no longer current */
	HNV_MISS_NOT_IPV4,    /* ARP, IPv6, anything but IPv4 */
	HNV_MISS_VLAN,        /* a VM frame with an 802.1Q tag */
	HNV_MISS_MULTICAST,   /* broadcast or multicast destination MAC */
	HNV_MISS_IP_OPTIONS,  /* not a 20-byte IPv4 header */
	HNV_MISS_FRAGMENT,
	HNV_MISS_PROTOCOL,    /* not TCP, UDP or ICMP echo */
	HNV_MISS_TCP_FLAGS,   /* SYN, FIN or RST: the slow path sees them */
	HNV_MISS_TTL,         /* the entry decrements a TTL <= 1 */
	HNV_MISS_MTU,         /* the result would not fit the entry's MTU */
	HNV_MISS_TRUNCATED,   /* shorter than its headers */
	HNV_MISS_NOT_TUNNEL,  /* uplink: not VXLAN/NVGRE in plain IPv4 */
	HNV_MISS_NOT_LOCAL,   /* uplink: outer destination MAC not the uplink's */
	HNV_MISS_ACTION,      /* an entry whose action this program does not run */
	HNV_ERR_HELPER,       /* a helper failed after the hit: dropped */
	HNV_ERR_NESTED_GSO,   /* a GSO frame of the VM's own UDP tunnel: dropped */
	HNV_DROP_NEW_FLOW_RATE,   /* a port's meter (XDP or socket filter): a SYN over its rate */
	HNV_DROP_BROADCAST_RATE,  /* a port's meter: a group frame over the rate */
	HNV_DROP_ARP_RATE,        /* a port's meter: an ARP frame over the rate */
	HNV_DROP_QOS_OUTBOUND,  /* over its port's outbound cap (qos.h): dropped */
	HNV_COUNTER_MAX
};

/* The abuse limits of a VM port (openhnv.vfp.limits), metered by the port's socket
 * filter before a frame reaches the Python switch's ring, in this order. */
enum hnv_meter_kind {
	HNV_METER_NEW_FLOW = 0,  /* TCP SYN without ACK: always a new flow */
	HNV_METER_BROADCAST,     /* a group destination MAC, not ARP */
	HNV_METER_ARP,
	HNV_METER_KINDS
};

/* One rate as a generic cell rate algorithm (the token bucket of vfp.limits in
 * virtual time): a frame conforms while tat_ns <= now + tolerance_ns, and then
 * moves tat_ns on by interval_ns. Written whole by userspace, tat_ns by the
 * socket filters (compare and swap). */
struct hnv_bucket {
	__u64 interval_ns;   /* 1e9 / rate: what one frame costs; 0: this limit is off */
	__u64 tolerance_ns;  /* (burst - 1) * interval_ns: frames sent ahead of the rate */
	__u64 tat_ns;        /* theoretical arrival time; 0 (in the past): a full burst */
};

/* Value of hnv_port_meters: the buckets and the frames each dropped. */
struct hnv_meter {
	struct hnv_bucket buckets[HNV_METER_KINDS];
	__u64 dropped[HNV_METER_KINDS];  /* added to atomically by the socket filters */
};

/* ----------------------------------------------------------------- 2. maps */

/* hnv_port_flows: unified flows leaving VM ports.
 * Written by: the Python engine (openhnv.vswitch.fastpath), whole entries, after
 *   its slow path decided a flow; it deletes them when the flow retires.
 * Read by: tc_port.c (executes, updates stats in place) and the port socket
 *   filter (same lookup, decides who takes the frame). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);  /* userspace may resize before load */
	__type(key, struct hnv_port_key);
	__type(value, struct hnv_flow);
} hnv_port_flows SEC(".maps") __weak;

/* hnv_up_flows: unified flows arriving on uplinks (decapsulate + deliver).
 * Written by: the Python engine, as hnv_port_flows (the map name is short:
 * kernel object names hold 15 characters).
 * Read by: tc_uplink.c and the uplink socket filter. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
	__type(key, struct hnv_uplink_key);
	__type(value, struct hnv_flow);
} hnv_up_flows SEC(".maps") __weak;

/* hnv_port_gens: generation of each slot (the engine gives each port, and the
 * uplink, a slot). Written by: the Python engine only: it bumps a slot when a
 * policy change touches that port, which makes exactly the entries referring
 * to the old value miss. Never flushed. Read by: every program. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} hnv_port_gens SEC(".maps") __weak;

/* hnv_counters: hits, misses by reason, errors; per CPU, summed by userspace.
 * Written by: the tc programs, so that a frame counts once; the port socket
 * filters write only the drop_*_rate counters (a frame they drop over a limit
 * then also counts as tc's miss). Read by: the Python side. Its key type names
 * the reasons. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HNV_COUNTER_MAX);
	__type(key, enum hnv_counter);
	__type(value, __u64);
} hnv_counters SEC(".maps") __weak;

/* hnv_port_meters: the abuse limits of each VM port, by the ifindex of its veth
 * host end. Written by: the Python driver (vswitch.linux), one entry per VM port
 * when the limits are set (whole values; the kernel's dropped[] are carried over
 * when the limits change), deleted when the port goes. Read by: the port's XDP
 * program when it has one, else its socket filter: each moves tat_ns and counts
 * dropped[] (never both for one port: a port with XDP gets hnv_sk_classify, or
 * no filter). A port without an entry is not metered in the kernel (the Python
 * meter still is). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct hnv_meter);
} hnv_port_meters SEC(".maps") __weak;

char LICENSE[] SEC("license") __weak = "Apache-2.0";

/* ------------------------------------------------------- 3. classification */

/* What classification learned about a frame, for the actions. */
struct hnv_meta {
	__u32 inner_off;    /* the inner Ethernet header (0 on VM ports) */
	__u32 l3_l4_hlen;   /* inner IPv4 + transport header bytes */
	__u8 ttl;           /* inner IPv4 TTL */
	__u8 protocol;
	__u8 vlan_tagged;   /* uplink: the outer tag is in skb->vlan_tci */
	__u8 pad;
	__u8 inner_eth[ETH_HLEN];  /* the inner Ethernet header as received */
};

struct hnv_eth_ip {
	struct ethhdr eth;
	struct iphdr ip;
} __attribute__((packed));

static __always_inline void hnv_count(__u32 reason)
{
	__u64 *value = bpf_map_lookup_elem(&hnv_counters, &reason);

	if (value)
		*value += 1;
}

/* Parse the inner frame at off (Ethernet / IPv4 without options, not a
 * fragment / TCP, UDP or ICMP echo) into tuple and meta; 0 or a miss reason. */
static __always_inline int hnv_parse_inner(struct __sk_buff *skb, __u32 off,
					   struct hnv_tuple *tuple, struct hnv_meta *meta)
{
	struct hnv_eth_ip h;
	__u8 l4[14];  /* TCP up to its flags; UDP and ICMP use the first 8 */
	__u32 l4_off = off + sizeof(h);

	if (bpf_skb_load_bytes(skb, off, &h, sizeof(h)) < 0)
		return HNV_MISS_TRUNCATED;
	if (h.eth.h_proto != bpf_htons(ETH_P_IP))
		return HNV_MISS_NOT_IPV4;
	if (h.eth.h_dest[0] & 0x01)
		return HNV_MISS_MULTICAST;
	if (h.ip.version != 4 || h.ip.ihl != 5)
		return HNV_MISS_IP_OPTIONS;
	if (h.ip.frag_off & bpf_htons(HNV_IPV4_FRAGMENT))
		return HNV_MISS_FRAGMENT;
	__builtin_memcpy(tuple->dst_mac, h.eth.h_dest, ETH_ALEN);
	__builtin_memcpy(tuple->src_mac, h.eth.h_source, ETH_ALEN);
	__builtin_memcpy(meta->inner_eth, &h.eth, ETH_HLEN);
	tuple->src_ip = h.ip.saddr;
	tuple->dst_ip = h.ip.daddr;
	tuple->protocol = h.ip.protocol;
	meta->inner_off = off;
	meta->ttl = h.ip.ttl;
	meta->protocol = h.ip.protocol;
	switch (h.ip.protocol) {
	case IPPROTO_TCP:
		if (bpf_skb_load_bytes(skb, l4_off, l4, 14) < 0)
			return HNV_MISS_TRUNCATED;
		if (l4[13] & HNV_TCP_SLOW_FLAGS)
			return HNV_MISS_TCP_FLAGS;
		tuple->src_port = (__u16)l4[0] << 8 | l4[1];
		tuple->dst_port = (__u16)l4[2] << 8 | l4[3];
		meta->l3_l4_hlen = sizeof(struct iphdr) + ((__u32)(l4[12] >> 4) << 2);
		return 0;
	case IPPROTO_UDP:
		if (bpf_skb_load_bytes(skb, l4_off, l4, 8) < 0)
			return HNV_MISS_TRUNCATED;
		tuple->src_port = (__u16)l4[0] << 8 | l4[1];
		tuple->dst_port = (__u16)l4[2] << 8 | l4[3];
		meta->l3_l4_hlen = sizeof(struct iphdr) + 8;
		return 0;
	case IPPROTO_ICMP:
		if (bpf_skb_load_bytes(skb, l4_off, l4, 8) < 0)
			return HNV_MISS_TRUNCATED;
		if (l4[0] != HNV_ICMP_ECHO_REQUEST && l4[0] != HNV_ICMP_ECHO_REPLY)
			return HNV_MISS_PROTOCOL;
		tuple->src_port = (__u16)l4[0] << 8 | l4[1];
		tuple->dst_port = (__u16)l4[4] << 8 | l4[5];
		meta->l3_l4_hlen = sizeof(struct iphdr) + 8;
		return 0;
	}
	return HNV_MISS_PROTOCOL;
}

static __always_inline int hnv_generations_current(const struct hnv_flow *flow)
{
#pragma unroll
	for (int i = 0; i < HNV_MAX_GENS; i++) {
		__u32 slot = flow->gens[i].slot;
		__u32 *current;

		if (slot == HNV_GEN_UNUSED)
			continue;
		current = bpf_map_lookup_elem(&hnv_port_gens, &slot);
		if (!current || *current != flow->gens[i].generation)
			return 0;
	}
	return 1;
}

/* The IPv4 length of what leaves ifindex, per packet: a GSO frame leaves as
 * segments of gso_size payload bytes behind the inner headers. */
static __always_inline __u32 hnv_result_l3_len(struct __sk_buff *skb,
					       const struct hnv_flow *flow,
					       const struct hnv_meta *meta)
{
	__u32 added = flow->action == HNV_ACT_ENCAP ? flow->header_len : 0;
	__u32 gso_size = skb->gso_size;

	if (gso_size)
		return meta->l3_l4_hlen + gso_size + added;
	return skb->len - meta->inner_off - ETH_HLEN + added;
}

/* The checks every hit must pass beyond the lookup; 0 or a miss reason. */
static __always_inline int hnv_check_entry(struct __sk_buff *skb, const struct hnv_flow *flow,
					   const struct hnv_meta *meta)
{
	if (!hnv_generations_current(flow))
		return HNV_MISS_STALE;
	if ((flow->flags & HNV_F_DEC_TTL) && meta->ttl <= 1)
		return HNV_MISS_TTL;
	if (flow->mtu && hnv_result_l3_len(skb, flow, meta) > flow->mtu)
		return HNV_MISS_MTU;
	/* the outer IPv4 total length of the whole (GSO) frame must fit 16 bits */
	if (flow->action == HNV_ACT_ENCAP &&
	    skb->len + flow->header_len - ETH_HLEN > HNV_IPV4_MAX_TOTAL)
		return HNV_MISS_MTU;
	return 0;
}

/* A frame a VM sent, on its port: 0 with *found set, or a miss reason. */
static __always_inline int hnv_classify_port(struct __sk_buff *skb, struct hnv_port_key *key,
					     struct hnv_meta *meta, struct hnv_flow **found)
{
	struct hnv_flow *flow;
	int reason;

	if (skb->vlan_present)
		return HNV_MISS_VLAN;
	__builtin_memset(key, 0, sizeof(*key));
	key->ifindex = skb->ifindex;
	reason = hnv_parse_inner(skb, 0, &key->flow, meta);
	if (reason)
		return reason;
	flow = bpf_map_lookup_elem(&hnv_port_flows, key);
	if (!flow)
		return HNV_MISS_NO_ENTRY;
	if (flow->action != HNV_ACT_ENCAP && flow->action != HNV_ACT_DELIVER)
		return HNV_MISS_ACTION;
	reason = hnv_check_entry(skb, flow, meta);
	if (reason)
		return reason;
	*found = flow;
	return 0;
}

struct hnv_udp_vxlan {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
	__u8 flags;
	__u8 reserved[3];
	__u8 vni[3];
	__u8 reserved2;
};

struct hnv_nvgre {
	__be16 flags;
	__be16 protocol;
	__u8 vsid[3];
	__u8 flow_id;
};

/* A frame from the PA network, on an uplink: 0 with *found set, or a reason. */
static __always_inline int hnv_classify_uplink(struct __sk_buff *skb, struct hnv_uplink_key *key,
					       struct hnv_meta *meta, struct hnv_flow **found)
{
	struct hnv_eth_ip h;
	struct hnv_flow *flow;
	__u32 inner_off;
	int reason;

	meta->vlan_tagged = skb->vlan_present ? 1 : 0;
	if (skb->pkt_type != PACKET_HOST)
		return HNV_MISS_NOT_LOCAL;
	if (bpf_skb_load_bytes(skb, 0, &h, sizeof(h)) < 0)
		return HNV_MISS_TRUNCATED;
	if (h.eth.h_proto != bpf_htons(ETH_P_IP))
		return HNV_MISS_NOT_TUNNEL;  /* ARP for a PA, or a tag left in the frame */
	if (h.ip.version != 4 || h.ip.ihl != 5 || (h.ip.frag_off & bpf_htons(HNV_IPV4_FRAGMENT)))
		return HNV_MISS_NOT_TUNNEL;
	__builtin_memset(key, 0, sizeof(*key));
	key->remote_pa = h.ip.saddr;
	key->local_pa = h.ip.daddr;
	key->vlan_id = skb->vlan_present ? (skb->vlan_tci & HNV_VLAN_VID_MASK) : 0;
	if (h.ip.protocol == IPPROTO_UDP) {
		struct hnv_udp_vxlan v;

		if (bpf_skb_load_bytes(skb, sizeof(h), &v, sizeof(v)) < 0)
			return HNV_MISS_TRUNCATED;
		if (v.dest != bpf_htons(HNV_VXLAN_PORT) || !(v.flags & HNV_VXLAN_FLAG_I))
			return HNV_MISS_NOT_TUNNEL;
		key->vsid = (__u32)v.vni[0] << 16 | (__u32)v.vni[1] << 8 | v.vni[2];
		key->encap = HNV_ENCAP_VXLAN;
		inner_off = HNV_VXLAN_HEADER_LEN;
	} else if (h.ip.protocol == IPPROTO_GRE) {
		struct hnv_nvgre g;

		if (bpf_skb_load_bytes(skb, sizeof(h), &g, sizeof(g)) < 0)
			return HNV_MISS_TRUNCATED;
		if (g.flags != bpf_htons(HNV_GRE_KEY_PRESENT) ||
		    g.protocol != bpf_htons(HNV_NVGRE_PROTOCOL))
			return HNV_MISS_NOT_TUNNEL;
		key->vsid = (__u32)g.vsid[0] << 16 | (__u32)g.vsid[1] << 8 | g.vsid[2];
		key->encap = HNV_ENCAP_NVGRE;
		inner_off = HNV_NVGRE_HEADER_LEN;
	} else {
		return HNV_MISS_NOT_TUNNEL;
	}
	reason = hnv_parse_inner(skb, inner_off, &key->flow, meta);
	if (reason)
		return reason;
	flow = bpf_map_lookup_elem(&hnv_up_flows, key);
	if (!flow)
		return HNV_MISS_NO_ENTRY;
	if (flow->action != HNV_ACT_DECAP_DELIVER)
		return HNV_MISS_ACTION;
	reason = hnv_check_entry(skb, flow, meta);
	if (reason)
		return reason;
	*found = flow;
	return 0;
}

/* The socket filters' answer for a received frame: 0 (the socket never sees it:
 * the kernel takes it) or its whole length (the Python switch takes it). */
static __always_inline int hnv_socket_verdict(struct __sk_buff *skb, int reason)
{
	return reason == 0 ? 0 : (int)skb->len;
}

/* ------------------------------------------------------- abuse limits */

#define HNV_ETH_P_ARP 0x0806
#define HNV_TCP_ACK 0x10
#define HNV_METER_RETRIES 4  /* compare-and-swap attempts under contention */

/* Which limit meters a frame a VM sent: an HNV_METER_* kind, or -1 (none: the
 * frame may be a hit, or a miss the Python meter alone judges). A SYN without
 * ACK opens a connection: never a flow the kernel or the switch has cached. */
static __always_inline int hnv_meter_kind(struct __sk_buff *skb)
{
	struct hnv_eth_ip h;
	__u8 flags;
	__u32 tcp_off;

	if (skb->vlan_present || bpf_skb_load_bytes(skb, 0, &h.eth, sizeof(h.eth)) < 0)
		return -1;
	if (h.eth.h_proto == bpf_htons(HNV_ETH_P_ARP))
		return HNV_METER_ARP;
	if (h.eth.h_dest[0] & 0x01)
		return HNV_METER_BROADCAST;
	if (h.eth.h_proto != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, 0, &h, sizeof(h)) < 0)
		return -1;
	if (h.ip.version != 4 || h.ip.protocol != IPPROTO_TCP ||
	    (h.ip.frag_off & bpf_htons(HNV_IPV4_FRAGMENT)))
		return -1;
	tcp_off = ETH_HLEN + ((__u32)h.ip.ihl << 2);
	if (bpf_skb_load_bytes(skb, tcp_off + 13, &flags, 1) < 0)
		return -1;
	return (flags & (HNV_TCP_SYN | HNV_TCP_ACK)) == HNV_TCP_SYN ? HNV_METER_NEW_FLOW : -1;
}

/* Whether bucket b lets one more frame through at now (and charge it). A bucket
 * so contended that every attempt lost lets the frame through: the Python meter
 * still judges it. */
static __always_inline int hnv_conforms(struct hnv_bucket *b, __u64 now)
{
	__u64 interval = b->interval_ns;
	__u64 tolerance = b->tolerance_ns;
	__u64 old = b->tat_ns;

	if (!interval)
		return 1;
	for (int i = 0; i < HNV_METER_RETRIES; i++) {  /* a bounded loop (the verifier) */
		__u64 tat = old < now ? now : old;
		__u64 seen;

		if (tat > now + tolerance)
			return 0;
		seen = __sync_val_compare_and_swap(&b->tat_ns, old, tat + interval);
		if (seen == old)
			return 1;
		old = seen;
	}
	return 1;
}

/* A frame of meter kind (HNV_METER_*, or -1: none) that port ifindex sent, over
 * one of its limits: counted (per port and in hnv_counters) and 1, else 0. The one
 * meter of both attach points (the port socket filters here, xdp_port.c). */
static __always_inline int hnv_meter_drops(__u32 ifindex, int kind)
{
	struct hnv_meter *meter;

	if (kind < 0 || kind >= HNV_METER_KINDS)
		return 0;
	meter = bpf_map_lookup_elem(&hnv_port_meters, &ifindex);
	if (!meter || hnv_conforms(&meter->buckets[kind], bpf_ktime_get_ns()))
		return 0;
	__sync_fetch_and_add(&meter->dropped[kind], 1);
	hnv_count(HNV_DROP_NEW_FLOW_RATE + kind);
	return 1;
}

/* A frame a VM sent, over one of its port's limits: counted and 1, else 0. */
static __always_inline int hnv_over_limit(struct __sk_buff *skb)
{
	return hnv_meter_drops(skb->ifindex, hnv_meter_kind(skb));
}

/* ------------------------------------------------------------- 4. actions */

static __always_inline void hnv_account(struct __sk_buff *skb, struct hnv_flow *flow,
					__u32 bytes, __u32 counter)
{
	__u32 segments = skb->gso_segs;

	__sync_fetch_and_add(&flow->stats.packets, segments ? segments : 1);
	__sync_fetch_and_add(&flow->stats.bytes, bytes);
	flow->stats.last_used_ns = bpf_ktime_get_ns();
	hnv_count(counter);
}

/* The inner Ethernet header after the entry's MAC rewrite. */
static __always_inline void hnv_inner_eth(const struct hnv_flow *flow, struct hnv_meta *meta)
{
	if (flow->flags & HNV_F_SET_MACS) {
		__builtin_memcpy(meta->inner_eth, flow->dst_mac, ETH_ALEN);
		__builtin_memcpy(meta->inner_eth + ETH_ALEN, flow->src_mac, ETH_ALEN);
	}
}

/* TTL - 1 of the IPv4 header at l3, with the incremental checksum (RFC 1624). */
static __always_inline int hnv_decrement_ttl(struct __sk_buff *skb, __u32 l3,
					     const struct hnv_meta *meta)
{
	__u8 ttl = meta->ttl - 1;
	__be16 old_word = bpf_htons((__u16)meta->ttl << 8 | meta->protocol);
	__be16 new_word = bpf_htons((__u16)ttl << 8 | meta->protocol);

	if (bpf_l3_csum_replace(skb, l3 + offsetof(struct iphdr, check), old_word, new_word,
				sizeof(__u16)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, l3 + offsetof(struct iphdr, ttl), &ttl, 1, 0);
}

/* Outer IPv4 total length and checksum (from the entry's partial sum), UDP
 * length and source port or NVGRE FlowID, into the outer header copy. */
static __always_inline void hnv_patch_outer(__u8 *outer, const struct hnv_flow *flow, __u32 total)
{
	struct iphdr *ip = (struct iphdr *)(outer + ETH_HLEN);
	__u32 sum = (__u32)flow->csum_partial + total;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->tot_len = bpf_htons(total);
	ip->check = bpf_htons(~sum & 0xffff);
	if (flow->encap == HNV_ENCAP_VXLAN) {
		struct hnv_udp_vxlan *udp = (void *)(outer + ETH_HLEN + sizeof(*ip));

		udp->source = bpf_htons(flow->entropy);
		udp->len = bpf_htons(total - sizeof(*ip));
	} else {
		struct hnv_nvgre *gre = (void *)(outer + ETH_HLEN + sizeof(*ip));

		gre->flow_id = flow->entropy & 0xff;
	}
}

#define HNV_EALREADY 114  /* errno: the frame is already encapsulated */

#define HNV_ENCAP_FLAGS                                                                    \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | \
	 BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))

/* Room for the outer headers behind the frame's Ethernet header. The
 * encapsulation flags keep a GSO frame GSO (they set the tunnel GSO type and
 * the inner offsets; a fixed gso_size keeps the inner MSS). A frame the VM
 * already encapsulated itself (its own VXLAN with checksum offload) has inner
 * offsets of its own, which the kernel will not overwrite: it gets plain room
 * (its offsets stay right, they are relative to the buffer), unless it is GSO,
 * which would then be segmented wrongly: dropped. 0 or the error counter. */
static __always_inline int hnv_room(struct __sk_buff *skb, __u32 len, __u64 l4_flag)
{
	long result = bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, HNV_ENCAP_FLAGS | l4_flag);

	if (result != -HNV_EALREADY)
		return result < 0 ? HNV_ERR_HELPER : 0;
	if (skb->gso_size)
		return HNV_ERR_NESTED_GSO;
	return bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, 0) < 0 ? HNV_ERR_HELPER : 0;
}

/* Push the entry's outer headers in front of the frame (see hnv_room), tag
 * it; 0 or the error counter. */
static __always_inline int hnv_encapsulate(struct __sk_buff *skb, const struct hnv_flow *flow,
					   struct hnv_meta *meta)
{
	__u8 outer[HNV_VXLAN_HEADER_LEN + ETH_HLEN];
	__u32 total = skb->len + flow->header_len - ETH_HLEN;
	int error;

	hnv_inner_eth(flow, meta);
	if (flow->encap == HNV_ENCAP_VXLAN) {
		__builtin_memcpy(outer, flow->header, HNV_VXLAN_HEADER_LEN);
		__builtin_memcpy(outer + HNV_VXLAN_HEADER_LEN, meta->inner_eth, ETH_HLEN);
		hnv_patch_outer(outer, flow, total);
		error = hnv_room(skb, HNV_VXLAN_HEADER_LEN, BPF_F_ADJ_ROOM_ENCAP_L4_UDP);
		if (error)
			return error;
		if (bpf_skb_store_bytes(skb, 0, outer, HNV_VXLAN_HEADER_LEN + ETH_HLEN, 0) < 0)
			return HNV_ERR_HELPER;
	} else {
		__builtin_memcpy(outer, flow->header, HNV_NVGRE_HEADER_LEN);
		__builtin_memcpy(outer + HNV_NVGRE_HEADER_LEN, meta->inner_eth, ETH_HLEN);
		hnv_patch_outer(outer, flow, total);
		error = hnv_room(skb, HNV_NVGRE_HEADER_LEN, BPF_F_ADJ_ROOM_ENCAP_L4_GRE);
		if (error)
			return error;
		if (bpf_skb_store_bytes(skb, 0, outer, HNV_NVGRE_HEADER_LEN + ETH_HLEN, 0) < 0)
			return HNV_ERR_HELPER;
	}
	if ((flow->flags & HNV_F_VLAN) &&
	    bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), flow->vlan_tci) < 0)
		return HNV_ERR_HELPER;
	return 0;
}

/* Pop the outer tag and headers; the inner Ethernet header (after the
 * entry's MAC rewrite) takes the outer one's place; 0 or -1. */
static __always_inline int hnv_decapsulate(struct __sk_buff *skb, const struct hnv_flow *flow,
					   struct hnv_meta *meta)
{
	/* outer IPv4 + UDP/VXLAN or GRE + the inner Ethernet header: the outer
	 * Ethernet header stays in front and becomes the inner one */
	__s32 outer_len = -(__s32)meta->inner_off;

	if (meta->vlan_tagged && bpf_skb_vlan_pop(skb) < 0)
		return -1;
	hnv_inner_eth(flow, meta);
	/* a fixed gso_size: the inner MSS does not change when outer headers go */
	if (bpf_skb_adjust_room(skb, outer_len, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, 0, meta->inner_eth, ETH_HLEN, 0);
}

#endif /* HNV_FASTPATH_H */
