/* Socket filters for the Python switch's AF_PACKET sockets (SO_ATTACH_BPF).
 *
 * AF_PACKET taps run before tc ingress, so without a filter the Python switch
 * would also forward every frame the kernel forwards. Each filter runs the
 * same classification as its tc program and answers 0 (the socket never sees
 * the frame: the kernel executes it) or the frame's length (the Python switch
 * takes it; tc drops it from the kernel). Frames the host sends out (the
 * switch's own, the kernel's redirects, GSO frames among them) are never the
 * switch's to read: 0 spares copying them. The filters count nothing: tc counts
 * each frame once.
 */
#include "hnv.h"

/* On the AF_PACKET socket of a VM port's veth host end. */
SEC("socket")
int hnv_sk_port(struct __sk_buff *skb)
{
	struct hnv_port_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;

	if (skb->pkt_type == PACKET_OUTGOING)
		return 0;
	return hnv_socket_verdict(skb, hnv_classify_port(skb, &key, &meta, &flow));
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
