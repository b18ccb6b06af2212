"""What a training step really computes, as `torch.profiler` records it.

Used to check that a frozen victim costs no weight gradients: every `aten::convolution_backward` call
carries an `output_mask` (grad_input, grad_weight, grad_bias) that says what it computed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.profiler import ProfilerActivity, profile


@dataclass(frozen=True)
class ConvBackwardCount:
    calls: int  # convolution backward kernels
    weight_grads: int  # of which computed a weight gradient
    input_grads: int  # of which computed an input gradient


def conv_backward_count(step: Callable[[], Any]) -> ConvBackwardCount:
    """Run `step()` once under the profiler and count what its convolution backward kernels computed."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    masks = [e.concrete_inputs[-1] for e in prof.events() if e.name == "aten::convolution_backward"]
    return ConvBackwardCount(len(masks), sum(bool(m[1]) for m in masks), sum(bool(m[0]) for m in masks))
