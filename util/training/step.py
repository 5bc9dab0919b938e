"""The training steps of one epoch: eager, or replayed from a CUDA graph.

The training images live on the device as one uint8 tensor, so a step is gather, augment, fold,
forward, loss, backward, optimizer step and the epoch's running loss and top-1/top-5 sums, all
on the device. These CNNs are so small that launch overhead bounds a step, and several runs
share one GPU: on CUDA the whole step is captured once in a CUDA graph (for the full batch),
its image indices read from a device copy of the epoch's order at a device-side position that
the graph itself advances, so a full batch costs one launch (a replay) and no host work. A
shorter last batch runs eagerly.

With ``compiled``, the full batch's forward and loss (from the gathered uint8 images to the
loss and the batch's top-1/top-5 hits) go through ``torch.compile``: Inductor fuses the
elementwise kernels around the convolutions, forward and backward, so a step launches fewer
kernels (augmentation, which draws random numbers, stays eager). The last, shorter batch runs
the same code uncompiled, so no second shape is compiled.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from config.tasks import Task
from datasets import augment, to_float
from models import fold_images, unfold_logits
from util.cli import exception_line
from util.training.evaluate import topk_correct


class TrainStep:
    """Trains on an epoch's batches of ``full`` images: ``start_epoch(order, gen)``, then
    ``batch(b, size)`` for b = 0, 1, ... in turn (``order[b * full : b * full + size]``; only the
    last may be shorter), then ``sums()``: the epoch's summed loss x images, top-1 and top-5 hits.
    ``targets``: the teacher's logits per image (distillation: MSE), else cross-entropy on labels."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: Task, fold: int,
                 images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
                 amp_dtype: torch.dtype | None, channels_last: bool, full: int, compiled: bool = False) -> None:
        self.model, self.optimizer, self.task, self.fold = model, optimizer, task, fold
        self.images, self.labels, self.targets = images, labels, targets
        self.amp_dtype, self.channels_last = amp_dtype, channels_last
        self.device = images.device
        self.running = torch.zeros(3, device=self.device)  # loss * n, top-1 hits, top-5 hits
        self.order = torch.zeros(0, dtype=torch.long, device=self.device)
        self.full = full  # images in a full batch (a multiple of f)
        self.gen: torch.Generator | None = None
        # CUDA: Inductor; CPU: traced through dynamo and AOTAutograd without code generation (a check)
        backend = "inductor" if self.device.type == "cuda" else "aot_eager"
        self.full_loss = torch.compile(self.loss_and_hits, backend=backend, dynamic=False) if compiled \
            else self.loss_and_hits
        # set by capture(): the graph, the order it reads from and its position in it
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_order = self.pos = self.offsets = None

    def forward_loss(self, x_u8: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image logits and loss of the (augmented) uint8 images ``x_u8``, images ``idx`` of
        the train set (a multiple of f)."""
        x = fold_images(to_float(x_u8, self.task), self.fold)
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

    def loss_and_hits(self, x_u8: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of the images, and their (loss x images, top-1 hits, top-5 hits) for the sums."""
        logits, loss = self.forward_loss(x_u8, idx)
        logits, labels = logits.detach(), self.labels.index_select(0, idx)
        return loss, torch.stack([loss.detach() * len(idx), topk_correct(logits, labels, 1).float(),
                                  topk_correct(logits, labels, 5).float()])

    def _step(self, idx: torch.Tensor, gen: torch.Generator | None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        x_u8 = augment(self.images.index_select(0, idx), self.task, gen)
        loss_of = self.full_loss if len(idx) == self.full else self.loss_and_hits
        loss, hits = loss_of(x_u8, idx)
        loss.backward()
        self.optimizer.step()
        self.running += hits

    def start_epoch(self, order: torch.Tensor, gen: torch.Generator | None) -> None:
        """Begin an epoch over ``order`` (image indices on the device); ``gen`` seeds the eager
        steps' augmentation (a replay draws from the device's own RNG)."""
        self.order, self.gen = order, gen
        self.running.zero_()
        if self.graph is not None:
            self.static_order[:len(order)].copy_(order)
            self.pos.zero_()

    def batch(self, b: int, size: int) -> None:
        """Train on batch ``b`` of the epoch (``size`` images, a multiple of f)."""
        if self.graph is not None and size == self.full:
            self.graph.replay()
            return
        self._step(self.order[b * self.full: b * self.full + size], self.gen)

    def sums(self) -> torch.Tensor:
        """The epoch's loss x images, top-1 and top-5 hits so far (on the device: no sync)."""
        return self.running

    def capture(self) -> None:
        """Capture one full batch's step (index gather at the device position, augment, forward,
        backward, optimizer step, running sums, position advance) in one CUDA graph."""
        self.static_order = torch.zeros(len(self.images), dtype=torch.long, device=self.device)
        self.pos = torch.zeros((), dtype=torch.long, device=self.device)
        self.offsets = torch.arange(self.full, device=self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        params = [t.detach().clone() for t in self.model.state_dict().values()]
        saved = {id(p): {k: v.clone() for k, v in st.items()} for p, st in self.optimizer.state.items()}
        warm_idx = self.offsets % len(self.images)
        with torch.cuda.stream(side):
            try:  # the first full batch compiles (--compile-step)
                self._step(warm_idx, None)
            except Exception as exc:  # keep training: the uncompiled step is slower, not wrong
                if self.full_loss == self.loss_and_hits:
                    raise
                print(f"warning: torch.compile of the training step failed "
                      f"({exception_line(exc, typed=True)}); training uncompiled", flush=True)
                self.full_loss = self.loss_and_hits
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                self._step(warm_idx, None)
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
            self.running.zero_()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step(self.static_order.index_select(0, self.pos + self.offsets), None)
            self.pos += self.full
        self.graph = graph
