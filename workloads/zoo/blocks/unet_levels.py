"""The level structure every diffusers-style UNet shares (`_unet2d`, `_unet2d_added_kv`, `_unet3d`).

A diffusers UNet is down blocks, a mid block and up blocks around a skip stack; each block
is `layers` x (resnet [+ attention]) and a resampler, the up blocks concatenating one skip
before each resnet. The builders differ only in what a resnet, an attention and a resampler
are, so they pass those as callables and this module fixes the order and the op names
(`down_blocks.<i>`, `mid_block`, `up_blocks.<i>`, `skip_concat.<j>`, `conv_norm_out`,
`conv_act`, `conv_out`). It also holds the config fields every such UNet has (`UNetLayout`)
and reads and checks the `down_block_types`/`up_block_types` pair of a config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from .config import ConfigReader

# (index j within the block, x) -> x: one resnet or one attention layer of a block.
Layer = Callable[[int, Tensor], Tensor]


@dataclass(frozen=True)
class UNetLayout:
    """The config fields every diffusers UNet has: channels in and out, per-level widths and block types."""

    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]

    @property
    def downscale(self) -> int:
        """Input pixels per bottleneck pixel (one 2x downsampler between levels): sides must be multiples of it."""
        return 2 ** (len(self.block_out_channels) - 1)


class Blocks(Protocol):
    """What a UNet builder supplies per block: level `i` of type `kind`, with the skip stack."""

    def down(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor: ...

    def mid(self, x: Tensor) -> Tensor: ...

    def up(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor: ...


def block_types(
    r: ConfigReader,
    supported: tuple[Sequence[str], Sequence[str]],
    defaults: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The config's (down_block_types, up_block_types): non-empty, of `supported` types, as many up as down."""
    what = r.what
    down = r.names("down_block_types", defaults[0])
    up = r.names("up_block_types", defaults[1])
    for kind, types, ok in (("down", down, supported[0]), ("up", up, supported[1])):
        if not types:
            raise InputError(f"{what}: config '{kind}_block_types' is required")
        for t in types:
            if t not in ok:
                raise InputError(f"{what}: {kind} block type {t!r} is not supported (supported: {', '.join(ok)})")
    if len(up) != len(down):
        raise InputError(f"{what}: {len(down)} down_block_types but {len(up)} up_block_types")
    return down, up


def levels(
    b: GraphBuilder, blocks: Blocks, x: Tensor, down_types: Sequence[str], up_types: Sequence[str], *, mid: bool = True
) -> Tensor:
    """Down blocks (pushing skips, `x` first), the mid block (when `mid`), up blocks (popping them)."""
    skips = [x]
    for i, kind in enumerate(down_types):
        with b.scope("down_blocks", i):
            x = blocks.down(i, kind, x, skips)
    if mid:
        with b.scope("mid_block"):
            x = blocks.mid(x)
    for i, kind in enumerate(up_types):
        with b.scope("up_blocks", i):
            x = blocks.up(i, kind, x, skips)
    return x


def down_block(
    x: Tensor,
    skips: list[Tensor],
    layers: int,
    resnet: Layer,
    attention: Layer | None,
    downsample: Callable[[Tensor], Tensor] | None,
) -> Tensor:
    """`layers` x (resnet [+ attention]), each output a skip, then the downsampler (its output a skip too)."""
    for j in range(layers):
        x = resnet(j, x)
        if attention is not None:
            x = attention(j, x)
        skips.append(x)
    if downsample is not None:
        x = downsample(x)
        skips.append(x)
    return x


def mid_block(x: Tensor, resnet: Layer, attention: Layer | None) -> Tensor:
    """resnet, then (attention, resnet) when the block has attention."""
    x = resnet(0, x)
    if attention is not None:
        x = resnet(1, attention(0, x))
    return x


def up_block(
    b: GraphBuilder,
    x: Tensor,
    skips: list[Tensor],
    layers: int,
    resnet: Layer,
    attention: Layer | None,
    upsample: Callable[[Tensor], Tensor] | None,
) -> Tensor:
    """`layers + 1` x (concat a popped skip, resnet [+ attention]), then the upsampler."""
    for j in range(layers + 1):
        x = b.concat(f"skip_concat.{j}", [x, skips.pop()], dim=1)
        x = resnet(j, x)
        if attention is not None:
            x = attention(j, x)
    return upsample(x) if upsample is not None else x


def output_head(b: GraphBuilder, x: Tensor, *, groups: int, act: str, out_channels: int, kernel: int = 3) -> Tensor:
    """`conv_norm_out` (GroupNorm), `conv_act`, `conv_out` (a `kernel` conv, same padding)."""
    x = b.group_norm("conv_norm_out", x, groups)
    x = b.activation("conv_act", x, act)
    return b.conv("conv_out", x, out_channels, kernel, padding=(kernel - 1) // 2)
