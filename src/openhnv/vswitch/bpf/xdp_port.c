/* XDP on a VM port's veth host end: the port's abuse limits, as early as the
 * kernel allows.
 *
 * A frame the VM sent is metered here before the host builds anything for it:
 * before AF_PACKET taps (the switch's ring), tc ingress and the host's IP stack.
 * The meter is hnv.h's (hnv_meter_drops on hnv_port_meters, the same buckets and
 * counts as the socket filters'): a TCP SYN without ACK, a frame to a group MAC
 * other than ARP, or ARP, over its port's rate, is XDP_DROP and counted; every
 * other frame passes unchanged. A port with this program gets a socket filter
 * that does not meter again (hnv_sk_classify with the fast path, none without),
 * so each frame is charged once.
 *
 * The frame is read in place (direct packet access): a VM's frame arrives whole
 * in its first buffer up to its transport header. A frame still carrying its
 * 802.1Q tag is left alone, as the socket filters leave a tagged frame.
 */
#include "hnv.h"

#define HNV_ETH_P_8021Q 0x8100
#define HNV_ETH_P_8021AD 0x88A8

/* Which limit meters the frame at [data, end): an HNV_METER_* kind or -1, as
 * hnv_meter_kind judges the same frame in a socket filter. */
static __always_inline int hnv_xdp_meter_kind(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 *tcp;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(HNV_ETH_P_8021Q) || eth->h_proto == bpf_htons(HNV_ETH_P_8021AD))
		return -1;
	if (eth->h_proto == bpf_htons(HNV_ETH_P_ARP))
		return HNV_METER_ARP;
	if (eth->h_dest[0] & 0x01)
		return HNV_METER_BROADCAST;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > end)
		return -1;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP ||
	    (ip->frag_off & bpf_htons(HNV_IPV4_FRAGMENT)))
		return -1;
	tcp = (__u8 *)ip + ((__u32)ip->ihl << 2);
	if ((void *)(tcp + 14) > end)
		return -1;
	return (tcp[13] & (HNV_TCP_SYN | HNV_TCP_ACK)) == HNV_TCP_SYN ? HNV_METER_NEW_FLOW : -1;
}

SEC("xdp")
int hnv_xdp_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	return hnv_meter_drops(ctx->ingress_ifindex, hnv_xdp_meter_kind(data, end)) ? XDP_DROP
										      : XDP_PASS;
}
