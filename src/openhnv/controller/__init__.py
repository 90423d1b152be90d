"""The Network Controller: northbound (resources, validation, store, service), the
policy compiler (a pure function: snapshot -> each host's desired rows) and southbound
(the publisher keeping every host's OVSDB equal to what it compiled)."""
