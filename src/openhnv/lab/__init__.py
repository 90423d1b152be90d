"""The lab: a whole datacenter on one Linux machine, in network namespaces."""
