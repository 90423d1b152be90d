/* tc ingress of a VM port (the host end of the VM's veth): frames the VM sent.
 *
 * A hit is encapsulated toward a remote PA and redirected to the uplink
 * (HNV_ACT_ENCAP), or delivered to another local VM port (HNV_ACT_DELIVER),
 * both after the entry's optional inner edit, within the port's outbound QoS
 * cap (qos.h). Anything else is dropped here:
 * the Python switch already has it (the port socket filter let it through), and
 * the host's own IP stack must not see VM traffic.
 */
#include "hnv.h"
#include "qos.h"

SEC("tc")
int hnv_tc_port(struct __sk_buff *skb)
{
	struct hnv_port_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;
	__u32 bytes = skb->len;
	int reason = hnv_classify_port(skb, &key, &meta, &flow);

	if (reason || !flow) {
		hnv_count(reason ? reason : HNV_MISS_NO_ENTRY);
		return TC_ACT_SHOT;
	}
	reason = hnv_qos_outbound(skb, key.ifindex, flow, ETH_HLEN + meta.l3_l4_hlen);
	if (reason) {
		hnv_count(reason);
		return TC_ACT_SHOT;
	}
	if ((flow->flags & HNV_F_DEC_TTL) && hnv_decrement_ttl(skb, ETH_HLEN, &meta) < 0)
		goto error;
	if (flow->action == HNV_ACT_ENCAP) {
		int error = hnv_encapsulate(skb, flow, &meta);

		if (error) {
			hnv_count(error);
			return TC_ACT_SHOT;
		}
		hnv_account(skb, flow, bytes, HNV_HIT_ENCAP);
	} else {
		hnv_inner_eth(flow, &meta);
		if ((flow->flags & HNV_F_SET_MACS) &&
		    bpf_skb_store_bytes(skb, 0, meta.inner_eth, 2 * ETH_ALEN, 0) < 0)
			goto error;
		hnv_account(skb, flow, bytes, HNV_HIT_DELIVER);
	}
	return bpf_redirect(flow->ifindex, 0);
error:
	hnv_count(HNV_ERR_HELPER);
	return TC_ACT_SHOT;
}
