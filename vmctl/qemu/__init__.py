"""QEMU: argv assembly with provenance, capability probe, process management."""
