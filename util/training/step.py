"""One training step over a batch of image indices: eager, or replayed from a CUDA graph.

The training images live on the device as one uint8 tensor, so a step is gather, augment, fold,
forward, loss, backward and optimizer step, all on the device. These CNNs are so small that
launch overhead bounds a step; on CUDA the whole step is captured once in a CUDA graph (for the
full batch) and replayed. A shorter last batch runs eagerly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from config.tasks import Task
from datasets import augment, to_float
from models import fold_images, unfold_logits


class TrainStep:
    """``step(idx, gen) -> (per-image logits, loss)`` for the images ``idx`` (a multiple of f).
    ``targets``: the teacher's logits per image (distillation: MSE), else cross-entropy on labels."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: Task, fold: int,
                 images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
                 amp_dtype: torch.dtype | None, channels_last: bool) -> None:
        self.model, self.optimizer, self.task, self.fold = model, optimizer, task, fold
        self.images, self.labels, self.targets = images, labels, targets
        self.amp_dtype, self.channels_last = amp_dtype, channels_last
        self.device = images.device
        # set by capture(): the graph, its fixed index input and its outputs
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_idx: torch.Tensor | None = None
        self.static_logits: torch.Tensor | None = None
        self.static_loss: torch.Tensor | None = None

    def forward_loss(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image logits and loss of the images ``idx`` (a multiple of f)."""
        x = augment(self.images.index_select(0, idx), self.task, gen)
        x = fold_images(to_float(x, self.task), self.fold)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None,
                            cache_enabled=False):
            logits = unfold_logits(self.model(x), self.fold).float()
        if self.targets is not None:
            loss = F.mse_loss(logits, self.targets.index_select(0, idx))
        else:
            loss = F.cross_entropy(logits, self.labels.index_select(0, idx))
        return logits, loss

    def eager(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        logits, loss = self.forward_loss(idx, gen)
        loss.backward()
        self.optimizer.step()
        return logits.detach(), loss.detach()

    def __call__(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is not None and len(idx) == len(self.static_idx):
            self.static_idx.copy_(idx)
            self.graph.replay()
            return self.static_logits, self.static_loss
        return self.eager(idx, gen)

    def capture(self, batch: int) -> None:
        """Capture gather+augment+forward+backward+step for ``batch`` images in one CUDA graph."""
        static_idx = torch.zeros(batch, dtype=torch.long, device=self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        params = [t.detach().clone() for t in self.model.state_dict().values()]
        saved = {id(p): {k: v.clone() for k, v in st.items()} for p, st in self.optimizer.state.items()}
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                self.eager(static_idx, None)
        torch.cuda.current_stream().wait_stream(side)
        # Undo the warm-up IN PLACE: the graph must see the same tensors later steps update,
        # and optimizer state created now (not inside capture) so replays do not re-zero it.
        with torch.no_grad():
            for t, v in zip(self.model.state_dict().values(), params):
                t.copy_(v)
            for p, st in self.optimizer.state.items():
                for k, v in st.items():
                    if isinstance(v, torch.Tensor):
                        v.copy_(saved[id(p)][k]) if id(p) in saved else v.zero_()
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            logits, loss = self.forward_loss(static_idx, None)
            loss.backward()
            self.optimizer.step()
        self.graph, self.static_idx = graph, static_idx
        self.static_logits, self.static_loss = logits.detach(), loss.detach()
