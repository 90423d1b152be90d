/* Socket filters for the Python switch's AF_PACKET sockets (SO_ATTACH_BPF).
 *
 * AF_PACKET taps run before tc ingress, so without a filter the Python switch
 * would also forward every frame the kernel forwards. Each filter runs the
 * same classification as its tc program and answers 0 (the socket never sees
 * the frame: the kernel executes it) or the frame's length (the Python switch
 * takes it; tc drops it from the kernel). Frames the host sends out (the
 * switch's own, the kernel's redirects, GSO frames among them) are never the
 * switch's to read: 0 spares copying them. The filters count nothing but the
 * frames they drop over a port's abuse limits (hnv_over_limit): tc counts each
 * frame once.
 *
 * The port filters meter first: a SYN, broadcast or ARP frame over its port's
 * rate (hnv_port_meters) never reaches the switch's ring, and tc (or, without the
 * fast path, vswitch.ingress's drop program) drops it from the kernel as any
 * miss. hnv_sk_meter is that meter alone, for a switch without the fast path.
 * A port whose veth has the XDP meter (xdp_port.c) was metered there already:
 * it gets hnv_sk_classify (with the fast path) or no filter, never a second
 * charge of the same buckets.
 */
#include "hnv.h"

/* On the AF_PACKET socket of a VM port's veth host end. */
SEC("socket")
int hnv_sk_port(struct __sk_buff *skb)
{
	struct hnv_port_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;

	if (skb->pkt_type == PACKET_OUTGOING || hnv_over_limit(skb))
		return 0;
	return hnv_socket_verdict(skb, hnv_classify_port(skb, &key, &meta, &flow));
}

/* On the AF_PACKET socket of a VM port whose veth host end has the XDP meter:
 * hnv_sk_port without the meter. */
SEC("socket")
int hnv_sk_classify(struct __sk_buff *skb)
{
	struct hnv_port_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;

	if (skb->pkt_type == PACKET_OUTGOING)
		return 0;
	return hnv_socket_verdict(skb, hnv_classify_port(skb, &key, &meta, &flow));
}

/* On the AF_PACKET socket of a VM port when the switch runs without the fast
 * path: the abuse limits only; every other frame goes to the switch as before. */
SEC("socket")
int hnv_sk_meter(struct __sk_buff *skb)
{
	if (skb->pkt_type != PACKET_OUTGOING && hnv_over_limit(skb))
		return 0;
	return (int)skb->len;
}

/* On the AF_PACKET socket of an uplink. */
SEC("socket")
int hnv_sk_uplink(struct __sk_buff *skb)
{
	struct hnv_uplink_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;

	if (skb->pkt_type == PACKET_OUTGOING)
		return 0;
	return hnv_socket_verdict(skb, hnv_classify_uplink(skb, &key, &meta, &flow));
}
