"""The gateway role of a host: per-tenant compartments (network namespaces) where kernel
routing, nftables NAT and strongSwan connect a VNet to networks outside it."""
