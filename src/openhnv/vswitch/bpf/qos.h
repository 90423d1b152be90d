/* The QoS layer in the kernel: per-port bandwidth caps (docs/vfp.md, "QoS").
 *
 * The VFP engine's QoS layer (openhnv/vfp/qos.py) polices the frames the Python
 * switch carries; these buckets police the frames the kernel executes, so an
 * offloaded flow cannot outrun its port's cap. Each frame is metered by exactly
 * one of them (the socket filter and tc agree on who takes it). A bucket is a
 * policer: bytes refilled at the cap's rate up to a burst; a frame passes when
 * the bucket holds its bytes, else it is dropped and counted (in its bucket, by
 * port, and in hnv_counters). Bytes are those of the VM's frames: a GSO frame
 * counts each segment's headers (the frames the VM's wire would carry); the
 * outer headers the host adds are not the tenant's.
 *
 * Outbound (VM -> network) is checked in tc_port.c on the port the frame came
 * from; inbound (network -> VM) where the kernel hands a frame to a VM port:
 * tc_uplink.c after decapsulation, tc_port.c for local delivery.
 */
#ifndef HNV_QOS_H
#define HNV_QOS_H

#include "hnv.h"

#define HNV_QOS_OUTBOUND 0  /* hnv_qos_key.direction: frames the VM sends */
#define HNV_QOS_INBOUND 1   /* frames about to enter the VM */
#define HNV_QOS_MAX_BUCKETS 16384
#define HNV_NSEC_PER_SEC 1000000000ULL

struct hnv_qos_key {
	__u32 ifindex;    /* the VM port's veth host end */
	__u32 direction;  /* HNV_QOS_OUTBOUND or HNV_QOS_INBOUND */
};

struct hnv_qos_bucket {
	struct bpf_spin_lock lock;  /* the programs' only; userspace writes skip it */
	__u32 pad;
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
 *   port's caps change (rate, burst, fill_ns; tokens 0 and last_ns 0 make the
 *   first frame fill it), deleted when the caps or the port go; adopted with the
 *   other maps after a restart, kept when the caps are the same.
 * Read by: tc_port.c and tc_uplink.c, which refill, spend and count under the
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

/* Whether port ifindex may pass bytes in direction (1), or the frame is dropped
 * (0, counted in the bucket). A port without a bucket has no cap. */
static __always_inline int hnv_qos_admit(__u32 ifindex, __u32 direction, __u64 bytes)
{
	struct hnv_qos_key key = {.ifindex = ifindex, .direction = direction};
	struct hnv_qos_bucket *b = bpf_map_lookup_elem(&hnv_qos_buckets, &key);
	__u64 now, elapsed, added;
	int admitted;

	if (!b)
		return 1;
	now = bpf_ktime_get_ns();
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

/* A frame the kernel carries from VM port ifindex per flow: 0 when its port's
 * outbound cap and, for a local delivery, the receiving port's inbound cap let
 * it through, else the counter of the drop. */
static __always_inline int hnv_qos_port(__u32 ifindex, const struct hnv_flow *flow, __u64 bytes)
{
	if (!hnv_qos_admit(ifindex, HNV_QOS_OUTBOUND, bytes))
		return HNV_DROP_QOS_OUTBOUND;
	if (flow->action == HNV_ACT_DELIVER && !hnv_qos_admit(flow->ifindex, HNV_QOS_INBOUND, bytes))
		return HNV_DROP_QOS_INBOUND;
	return 0;
}

#endif /* HNV_QOS_H */
