"""Hand-written reference forward of a PreActResNet for the block tests (independent of
repro.blocks): the blocks in order, and a plain forward up to a block."""
from __future__ import annotations

import torch


def block_items(model) -> list[tuple]:
    """[(pool or None, block)] in forward order: a stage's pool runs before its first block."""
    return [(pool if j == 0 else None, b) for pool, stage in zip(model.pools, model.stages)
            for j, b in enumerate(stage)]


def forward_to_block(model, items, x1, i):
    """(pool, block, input of block i after its pool), computed without autograd."""
    with torch.no_grad():
        h = model.stem(x1)
        for pool, b in items[:i]:
            h = b(pool(h) if pool is not None else h)
        pool, b = items[i]
        return pool, b, pool(h) if pool is not None else h


def forward_from_block(items, i, h):
    """Run blocks i+1, ... from h (with autograd)."""
    for pool, b in items[i + 1:]:
        h = b(pool(h) if pool is not None else h)
    return h
