/* The QoS layer in the kernel: outbound caps of what the fast path carries
 * (docs/vfp.md, "QoS").
 *
 * A policer drops what exceeds a cap, and TCP reads a dropped 64 KiB GSO frame
 * as a lost window: a policed TCP flow falls far below its cap. So the kernel
 * shapes where it can queue (openhnv/vswitch/qdisc.py): a frame a capped port
 * sends toward the uplink (HNV_ACT_ENCAP) is put in its port's htb class on the
 * uplink (skb->priority = the bucket's priority); inbound caps are a tbf on the
 * port's veth, which every frame entering the VM crosses, redirected ones too.
 * What cannot queue is policed by the port's bucket: a frame delivered to
 * another local VM (HNV_ACT_DELIVER), or any frame of a port whose bucket has
 * no class. A port without a bucket (no cap, no reservation) still names its
 * own class, 1:<ifindex>: where the uplink's tree gives every port a class (a
 * port of the host reserves or is capped: htb's round robin between classes is
 * fair between ports), its frames take it; where no such class exists, htb
 * sends them to its default class or its direct queue, as before. A bucket is
 * bytes refilled at the cap's rate up to a burst; a frame
 * passes when the bucket holds its bytes, else it is dropped and counted (in
 * its bucket, by port, and in hnv_counters). Bytes are those of the VM's
 * frames: a GSO frame counts each segment's headers.
 */
#ifndef HNV_QOS_H
#define HNV_QOS_H

#include "hnv.h"

#define HNV_QOS_OUTBOUND 0  /* hnv_qos_key.direction: frames the VM sends */
#define HNV_QOS_INBOUND 1   /* frames about to enter the VM (a tbf's: unused here) */
#define HNV_QOS_MAX_BUCKETS 16384
#define HNV_NSEC_PER_SEC 1000000000ULL
#define HNV_HTB_HANDLE 1          /* the uplinks' htb root 1: (vswitch/qdisc.py) */
#define HNV_HTB_MAX_CLASS 0xfffe  /* the largest port class minor; 1:ffff: default */

struct hnv_qos_key {
	__u32 ifindex;    /* the VM port's veth host end */
	__u32 direction;  /* HNV_QOS_OUTBOUND or HNV_QOS_INBOUND */
};

struct hnv_qos_bucket {
	struct bpf_spin_lock lock;  /* the programs' only; userspace writes skip it */
	__u32 priority;    /* HNV_ACT_ENCAP: skb->priority of the port's htb class, 0: none */
	__u64 rate;        /* bytes a second (the cap: Mbit/s * 125000) */
	__u64 burst;       /* bytes the bucket holds at most */
	__u64 fill_ns;     /* ns to fill an empty bucket: burst * 1e9 / rate, rounded up */
	__u64 tokens;      /* bytes held */
	__u64 last_ns;     /* bpf_ktime_get_ns() of the last refill (0: fill first) */
	__u64 drops;       /* frames dropped */
	__u64 drop_bytes;  /* their bytes */
};

/* hnv_qos_buckets: a bucket per capped port and direction.
 * Written by: the Python switch (openhnv.vswitch.qoskernel): whole buckets when a
 *   port's outbound cap changes (priority, rate, burst, fill_ns; tokens 0 and
 *   last_ns 0 make the first frame fill it), deleted when the cap or the port
 *   goes; adopted with the other maps after a restart, kept when unchanged.
 * Read by: tc_port.c, which classifies, or refills, spends and counts under the
 *   bucket's lock. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HNV_QOS_MAX_BUCKETS);
	__type(key, struct hnv_qos_key);
	__type(value, struct hnv_qos_bucket);
} hnv_qos_buckets SEC(".maps") __weak;

/* The bytes a frame costs: its length, plus the headers of each further segment
 * of a GSO frame (l2_l3_l4: the Ethernet, IPv4 and transport headers). */
static __always_inline __u64 hnv_qos_bytes(struct __sk_buff *skb, __u32 l2_l3_l4)
{
	__u32 segments = skb->gso_segs;

	return (__u64)skb->len + (segments > 1 ? (__u64)(segments - 1) * l2_l3_l4 : 0);
}

/* Refill b at now and spend bytes: 1 when it held them, else 0 (counted). */
static __always_inline int hnv_qos_police(struct hnv_qos_bucket *b, __u64 bytes)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 elapsed, added;
	int admitted;

	bpf_spin_lock(&b->lock);
	elapsed = now > b->last_ns ? now - b->last_ns : 0;
	if (elapsed >= b->fill_ns) {
		b->tokens = b->burst;
		b->last_ns = now;
	} else {
		/* elapsed < fill_ns keeps elapsed * rate below burst * 1e9: no overflow */
		added = elapsed * b->rate / HNV_NSEC_PER_SEC;
		if (added) {  /* else the time stays owed: nothing is lost to rounding */
			b->tokens += added;
			if (b->tokens > b->burst)
				b->tokens = b->burst;
			b->last_ns = now;
		}
	}
	admitted = b->tokens >= bytes;
	if (admitted) {
		b->tokens -= bytes;
	} else {
		b->drops += 1;
		b->drop_bytes += bytes;
	}
	bpf_spin_unlock(&b->lock);
	return admitted;
}

/* A frame the kernel carries from VM port ifindex per flow, within the port's
 * outbound cap: 0 to go on (shaped by its htb class, or admitted by its
 * bucket, or the port has no cap: its own class if the uplink has one), else
 * the counter of the drop. */
static __always_inline int hnv_qos_outbound(struct __sk_buff *skb, __u32 ifindex,
					    const struct hnv_flow *flow, __u32 l2_l3_l4)
{
	struct hnv_qos_key key = {.ifindex = ifindex, .direction = HNV_QOS_OUTBOUND};
	struct hnv_qos_bucket *b = bpf_map_lookup_elem(&hnv_qos_buckets, &key);

	if (!b) {
		if (flow->action == HNV_ACT_ENCAP && ifindex <= HNV_HTB_MAX_CLASS)
			skb->priority = HNV_HTB_HANDLE << 16 | ifindex;
		return 0;
	}
	if (flow->action == HNV_ACT_ENCAP && b->priority) {
		skb->priority = b->priority;
		return 0;
	}
	return hnv_qos_police(b, hnv_qos_bytes(skb, l2_l3_l4)) ? 0 : HNV_DROP_QOS_OUTBOUND;
}

#endif /* HNV_QOS_H */
