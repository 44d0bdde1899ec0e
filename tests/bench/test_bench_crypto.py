"""The crypto benchmark's timing helper and its 4x arithmetic. No timings are asserted."""

from __future__ import annotations

import gc

from bench.bench_crypto import Timing, _where_the_time_goes, interleaved


def test_interleaved_runs_the_sides_in_turns_and_measures_their_collections() -> None:
    calls: list[str] = []

    def collects() -> None:
        calls.append("collects")
        gc.collect()

    t = interleaved({"quiet": lambda: calls.append("quiet"), "collects": collects}, repeat=3)
    assert calls == ["quiet", "collects"] * 3
    assert t["quiet"].gc == 0.0
    assert 0.0 < t["collects"].gc <= t["collects"].cpu


def test_the_4x_arithmetic_compares_a_quarter_of_the_peer_with_the_plain_orm_load() -> None:
    n = 1000

    def us(x: float) -> Timing:
        return Timing(wall=x * n / 1e6, cpu=x * n / 1e6, gc=0.0)

    per_value = {"ours": 1.0, "peer": 8.0}
    out = _where_the_time_goes({"plain": us(10), "encrypted": us(11), "peer": us(20)}, per_value, n)
    assert (out["needed_for_4x_us_per_row"], out["reachable_4x"]) == (5.0, False)
    out = _where_the_time_goes({"plain": us(3), "encrypted": us(4), "peer": us(16)}, per_value, n)
    assert (out["needed_for_4x_us_per_row"], out["reachable_4x"]) == (4.0, True)
