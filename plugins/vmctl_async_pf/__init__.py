"""Async page fault plugin: x86 kvm-asyncpf knobs, and the arm64 RFC protocol in the simulator."""
