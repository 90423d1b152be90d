"""Several controller replicas on one store: who leads (an etcd lease) and what the
leader runs (the southbound publisher); one process on SQLite always leads."""
