"""The Network Controller: resources, validation, store, allocators, compiler, publisher."""
