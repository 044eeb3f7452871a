"""Shared fixtures: small hand-built graphs that do not depend on the model zoo."""

from __future__ import annotations

import pytest
from hypothesis import settings

import sim
from workloads import GraphBuilder, OpGraph

# Property tests draw the same examples on every run: the suite is deterministic.
settings.register_profile("ttvsim", derandomize=True, deadline=None, database=None)
settings.load_profile("ttvsim")


def tiny_graph(batch: int = 1, tokens: int = 256, channels: int = 64) -> OpGraph:
    """A conv -> norm -> attention -> linear chain touching every unit."""
    b = GraphBuilder("tiny", stage="denoiser")
    x = b.input((batch, 8, 16, 16))
    x = b.conv("conv", x, channels)
    x = b.group_norm("norm", x, 8)
    x = b.activation("act", x, "silu")
    h = b.move("to_tokens", x, (batch, tokens, channels))
    q = b.linear("q", h, channels, bias=False)
    k = b.linear("k", h, channels, bias=False)
    v = b.linear("v", h, channels, bias=False)
    a = b.attention("attn", q, k, v, heads=4)
    o = b.linear("out", a, channels)
    b.add("residual", o, h)
    return b.build()


@pytest.fixture
def tiny() -> OpGraph:
    return tiny_graph()


@pytest.fixture
def os128() -> sim.Arch:
    return sim.load_arch("os128")
