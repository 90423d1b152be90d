/* tc ingress of an uplink: tunnel frames from the PA network.
 *
 * A hit (outer PAs, VSID, encapsulation, VLAN and inner flow all match an entry
 * of the current generations) loses its 802.1Q tag and outer headers, gets the
 * entry's optional inner edit and is redirected to the VM port's veth host end
 * (HNV_ACT_DECAP_DELIVER). Anything else (ARP for a PA, first packets, frames
 * of other shapes) is dropped here: the Python PA stack and switch already have
 * it through the uplink's AF_PACKET socket.
 */
#include "hnv.h"

SEC("tc")
int hnv_tc_uplink(struct __sk_buff *skb)
{
	struct hnv_uplink_key key;
	struct hnv_meta meta;
	struct hnv_flow *flow = 0;
	int reason = hnv_classify_uplink(skb, &key, &meta, &flow);
	__u32 bytes;

	if (reason || !flow) {
		hnv_count(reason ? reason : HNV_MISS_NO_ENTRY);
		return TC_ACT_SHOT;
	}
	/* the frame as on the wire: the kernel holds a received tag apart */
	bytes = skb->len + (meta.vlan_tagged ? HNV_VLAN_TAG_LEN : 0);
	if (hnv_decapsulate(skb, flow, &meta) < 0)
		goto error;
	if ((flow->flags & HNV_F_DEC_TTL) && hnv_decrement_ttl(skb, ETH_HLEN, &meta) < 0)
		goto error;
	hnv_account(skb, flow, bytes, HNV_HIT_DECAP);
	return bpf_redirect(flow->ifindex, 0);
error:
	hnv_count(HNV_ERR_HELPER);
	return TC_ACT_SHOT;
}
