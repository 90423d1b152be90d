"""``hnv host``: one host process, supervising its ovsdb-server, the host agent and the
vSwitch, with the control socket that operator commands ask."""
