"""The fixed DAVIS-345 halves of benchmarks/protocol.py (tune on one, report on the other)."""

from __future__ import annotations

from benchmarks import protocol as P


def test_davis_halves_are_fixed_contiguous_blocks() -> None:
    halves = [P.davis_half(i) for i in range(345)]
    assert halves.count("A") == 174 and halves.count("B") == 171
    assert halves[:16] == ["A"] * 16 and halves[16] == "B"  # block starts at DAVIS_BLOCKS
    assert P.davis_half("016_obj2") == "B"
