"""Mixture-of-experts weights as llama.cpp stores them: one 3-D tensor per projection and layer.

Hugging Face checkpoints keep one matrix per expert (`...experts.7.w1.weight`, `...experts.7.gate_proj.weight`);
llama.cpp wants them stacked as `blk.N.ffn_{gate,up,down}_exps.weight` of shape [n_expert, rows, cols]. Newer
transformers code may also save them fused (`experts.gate_up_proj` [n_expert, 2*ff, n_embd]). Both become a
`StackedTensor`, which reads its parts only when written, like every other tensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ftbench.core.errors import FtbenchError
from ftbench.export.gguf.hf import HFTensor

_PER_EXPERT = re.compile(
    r"^(?P<prefix>.+\.experts)\.(?P<idx>\d+)\.(?P<proj>w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$"
)
_FUSED = re.compile(r"^(?P<prefix>.+\.experts)\.(?P<proj>gate_up_proj|down_proj)$")


@dataclass(frozen=True)
class StackedTensor:
    """Several expert matrices (or one half of a fused tensor) seen as one [n_expert, rows, cols] tensor."""

    name: str
    parts: tuple[HFTensor, ...]
    shape: tuple[int, ...]
    half: int | None = None  # fused gate_up: 0 = gate rows, 1 = up rows

    @property
    def nbytes(self) -> int:
        share = 2 if self.half is not None else 1
        return sum(p.nbytes for p in self.parts) // share

    def numpy(self) -> np.ndarray:
        if self.half is None:
            return np.stack([p.numpy() for p in self.parts]) if len(self.parts) > 1 else self.parts[0].numpy()
        both = self.parts[0].numpy()
        rows = both.shape[1] // 2
        return np.ascontiguousarray(both[:, self.half * rows : (self.half + 1) * rows])


def group_experts(tensors: dict[str, HFTensor]) -> dict[str, HFTensor | StackedTensor]:
    """The checkpoint's tensors with per-expert matrices replaced by stacked ones (names TensorNameMap knows)."""
    out: dict[str, HFTensor | StackedTensor] = {}
    groups: dict[str, dict[int, HFTensor]] = {}
    for name, t in tensors.items():
        m = _PER_EXPERT.match(name)
        if m:
            groups.setdefault(f"{m['prefix']}.{m['proj']}", {})[int(m["idx"])] = t
            continue
        f = _FUSED.match(name)
        if f and len(t.shape) == 3:
            if f["proj"] == "gate_up_proj":
                n, rows, cols = t.shape
                for half, proj in enumerate(("gate_proj", "up_proj")):
                    key = f"{f['prefix']}.{proj}"
                    out[key] = StackedTensor(key, (t,), (n, rows // 2, cols), half)
            else:
                out[f"{f['prefix']}.down_proj"] = StackedTensor(f"{f['prefix']}.down_proj", (t,), t.shape)
            continue
        out[name] = t
    for key, by_idx in groups.items():
        parts = tuple(by_idx[i] for i in sorted(by_idx))
        if sorted(by_idx) != list(range(len(parts))):
            raise FtbenchError(
                f"The checkpoint's {key} experts are numbered {sorted(by_idx)}, not 0..{len(parts) - 1}.",
                "Some expert weights are missing; re-save the complete model.",
            )
        out[key] = StackedTensor(key, parts, (len(parts), *parts[0].shape))
    return out
