"""The training loop: one loop for teachers, scratch students, KD students and hook-driven methods.

Per step: forward the student (with features if a hook asks), get the teacher's logits (cached
per training index when the transfer set is not augmented), the method's base loss
(``losses.LOSSES``, registered by ``kdviz.methods``: cross-entropy, Hinton et al.'s KD...) plus every hook's loss terms, check
they are finite, backward, optimizer step, ``hook.after_step``. Metrics go to the ``LiveStore`` and
the run folder as they are made; evaluations, checkpoints and snapshots follow ``config``.

A non-finite loss (or non-finite weights at a checkpoint, or an update torch cannot even represent,
lr=1e300) ends the run as "diverged" with a message naming the step and the likely cause; the last
good checkpoint is left untouched. A run that ends predicting one class at chance accuracy finishes
with a "collapsed" warning in its message.

Checkpoints follow every evaluation, every ``checkpoint_every_steps`` steps (or, by default, every
``AUTO_CHECKPOINT_S`` seconds of training) and a stop, so a killed process loses little. Each
records its step, epoch and the last metric ``seq``, which ``resume.check_checkpoint`` holds against
the run's records before anything is dropped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..models.dropout import reseed_dropout
from .config import TrainConfig
from .data_feed import BatchFeed
from .evaluation import accuracy_and_loss, agreement, predict_logits
from .hooks import StepBatch
from .losses import LOSSES
from .model_state import effective_state_dict
from .optim import learning_rate
from .run_folder import RunFolder, checkpoint_file, inside_run, load_checkpoint, load_npz
from .resume import check_checkpoint
from .run_reader import RunReader
from .setup import build_run, resolve_device, steps_per_epoch
from .snapshots import SnapshotMaker
from .store import LiveStore
from .teacher_cache import TeacherLogitCache, memoized_teacher_logits


# A loss this many times its first value (or 1, if larger) counts as diverged even while finite:
# with a huge learning rate the loss can jump to 1e31 and fall back once every ReLU is dead.
EXPLOSION_FACTOR = 1e8
AUTO_CHECKPOINT_S = 5.0  # checkpoint_every_steps=None: a checkpoint after this much training time, so a kill loses
# at most a few seconds at a cost of about 1% (an 800-800 MLP's checkpoint takes ~50 ms on a busy 2-core VM)
COLLAPSE_CLASS_SHARE = 0.9  # a final model predicting one class for this share of the test set...
COLLAPSE_MARGIN = 0.02  # ...at no more than this above the commonest class's share has collapsed


class Control:
    """What the loop asks its runner between steps; the default never pauses or stops."""

    def wait_if_paused(self) -> float:
        """Block while paused; return the seconds spent waiting."""
        return 0.0

    def should_stop(self) -> bool:
        return False

    def on_progress(self, step: int, epoch: int, total_steps: int, elapsed_s: float, test_acc: float | None = None) -> None:
        pass

    def num_threads(self) -> int | None:
        """CPU threads this run may use now (None: leave torch's setting alone)."""
        return None


@dataclass
class Outcome:
    state: str  # "finished", "stopped" or "diverged"
    message: str
    step: int
    warning: str = ""  # set on a finished run that collapsed to chance accuracy


class Diverged(Exception):
    pass


def divergence_message(step: int, epoch: int, config: TrainConfig, values: dict[str, float], limit: float = math.inf) -> str:
    """Name the step, the non-finite (or exploded) terms and the likely cause (learning rate, temperature)."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v) or k == "loss" and v > limit}
    what = ", ".join(f"{k}={v:.3g}" for k, v in bad.items()) or "weights"
    causes = []
    hook_terms = [k for k in bad if "/" in k]  # hook terms are "<label>/<key>"
    if hook_terms and not bad.keys() & {"soft", "hard"}:
        causes.append(f"the hook term(s) {', '.join(hook_terms)} (check that hook's options)")
    high_lr = config.lr > (0.01 if config.optimizer == "adam" else 1.0)
    uses_t = LOSSES.get(config.method).uses_temperature
    extreme_t = uses_t and (config.T < 0.5 or config.T > 50)
    lr_cause = f"the learning rate lr={config.lr:g} is too high for {config.optimizer} (try 10x lower)"
    t_cause = f"the temperature T={config.T:g} ({'extreme; ' if extreme_t else ''}typical values are 1..20)"
    if extreme_t and not high_lr:
        causes += [t_cause, lr_cause]
    else:
        causes += [lr_cause] + ([t_cause] if uses_t else [])
    how = "became non-finite" if any(not math.isfinite(v) for v in bad.values()) else f"exploded past {EXPLOSION_FACTOR:.0e} x its first value"
    subject = "loss" if any("loss" in k or "/" in k or k in ("soft", "hard") for k in bad) else "training"
    return f"{subject} {how} at step {step} (epoch {epoch + 1}): {what}. Likely cause: {'; or '.join(causes)}."


class Trainer:
    """Runs one config to the end (or until stopped or diverged) and returns an ``Outcome``."""

    def __init__(self, config: TrainConfig, folder: RunFolder, store: LiveStore, control: Control | None = None, resume: bool = False) -> None:
        self.config = config.validate()
        self.folder = folder
        self.store = store
        self.control = control or Control()
        self.resume = resume
        self._threads: int | None = None
        self._loss_limit: float | None = None

    # ---- setup ----------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.config
        self.steps_per_epoch = steps_per_epoch(cfg)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        resume_state = None
        checkpoint = checkpoint_file(self.folder.path)  # last.safetensors, or an older kdviz's last.pt
        if self.resume and (checkpoint.exists() or checkpoint.is_symlink()):
            resume_state = load_checkpoint(checkpoint, map_location=resolve_device(cfg.device))
            check_checkpoint(resume_state, self.folder.path, cfg, force=True)  # resume.plan_resume ran the full check
        parts = build_run(cfg, self.total_steps, resume_state)
        self.device, self.data, self.model, self.teacher = parts.device, parts.dataset, parts.model, parts.teacher
        self.hooks, self.optimizer, self.ctx = parts.hooks, parts.optimizer, parts.ctx
        self.method = LOSSES.get(cfg.method)
        self.feed = BatchFeed(self.data.train_images, self.data.train_labels, cfg.batch_size, cfg.seed, cfg.jitter_px, self.device)
        self.needs_features = any(h.needs_features for _, h in self.hooks)
        self.cache = None
        split = (cfg.dataset, cfg.data_root, cfg.train_subset, cfg.seed if cfg.train_subset else None, tuple(cfg.train_classes or ()))
        if self.teacher is not None and cfg.cache_teacher_logits and not self.feed.augmented and not self.needs_features:
            logits = memoized_teacher_logits(cfg.teacher, self.teacher, self.data.train_images, self.device, (*split, "train"))
            self.cache = TeacherLogitCache(self.teacher, self.data.train_images, self.device, logits)
        g = torch.Generator().manual_seed(cfg.seed)
        n_train = len(self.data.train_labels)
        self.train_eval_idx = torch.randperm(n_train, generator=g)[: min(n_train, cfg.eval_train_samples)].sort().values
        self.teacher_test_logits = None
        if self.teacher is not None:
            self.teacher_test_logits = memoized_teacher_logits(cfg.teacher, self.teacher, self.data.test_images, self.device, (*split, "test"))
        self.snapshots = SnapshotMaker(self.data, cfg, self.device)
        self.step, self.elapsed_offset, self.seq_base, self.snap_base = 0, 0.0, 0, 0
        self.resume_note = ""
        reference_file = self.folder.snapshot_dir / "reference.npz"
        if resume_state is not None:
            self._continue_from(resume_state)
        elif self.resume:  # killed before its first checkpoint: start over (resume.plan_resume allowed it)
            cut = self.folder.truncate_after(None)
            self.seq_base, self.snap_base = cut.top_seq, cut.top_version
            self.resume_note = f"restarted from step 0 (no checkpoint had been saved); {cut.describe()}"
        if resume_state is not None and reference_file.is_file():
            reference = load_npz(inside_run(self.folder.path, "snapshots/reference.npz"))
            self.snapshots.restore(reference)
        else:
            reference = self.snapshots.reference(self.model, self.teacher)
            self.folder.write_reference(reference)
        self.store.set_reference(reference)

    def _continue_from(self, state: dict) -> None:
        """Step and clock from the checkpoint; logs past it dropped; the history so far reloaded."""
        self.step = int(state["step"])
        self.elapsed_offset = float(state.get("elapsed_s", 0.0))
        if self.step >= self.total_steps:
            raise ValueError(f"run {self.folder.path} already trained all {self.total_steps} steps; raise epochs to continue")
        cut = self.folder.truncate_after(self.step)
        self.seq_base, self.snap_base = cut.top_seq, cut.top_version
        self.resume_note = f"resumed from the checkpoint at step {self.step}; {cut.describe()}"
        reader = RunReader(self.folder.path)
        for record in reader.metrics():
            self.store.add_metric(record, seq=record["seq"])
        for snap in reader.snapshots_since(0)[0]:
            self.store.add_snapshot(snap.step, snap.epoch, snap.meta, snap.arrays, version=snap.version)

    # ---- recording ------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self.elapsed_offset + time.perf_counter() - self._t0 - self._paused

    def _record(self, record: dict[str, Any]) -> None:
        seq = max(self.store.metric_version, self.seq_base) + 1
        stored = self.store.add_metric(record, seq=seq)
        self.folder.append_metric(stored)

    def _evaluate(self) -> dict[str, Any]:
        cfg, m, d = self.config, self.model, self.data
        test_logits = predict_logits(m, d.test_images, self.device)
        test_acc, test_loss = accuracy_and_loss(test_logits, d.test_labels)
        self._top_class_share = torch.bincount(test_logits.argmax(dim=1).cpu()).max().item() / len(test_logits)
        train_logits = predict_logits(m, d.train_images[self.train_eval_idx], self.device)
        train_acc, train_loss = accuracy_and_loss(train_logits, d.train_labels[self.train_eval_idx])
        record = {"kind": "eval", "step": self.step, "epoch": self.step / self.steps_per_epoch, "t": self._elapsed(),
                  "train_acc": train_acc, "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss}
        if self.teacher_test_logits is not None:
            record["agreement_test"] = agreement(test_logits, self.teacher_test_logits)
        for label, hook in self.hooks:
            record.update({f"{label}/{k}": float(v) for k, v in hook.metrics(self.ctx).items()})
        if not (math.isfinite(test_loss) and math.isfinite(train_loss)):
            raise Diverged(divergence_message(self.step, self._epoch(), cfg, {"test_loss": test_loss, "train_loss": train_loss}))
        self._record(record)
        self.last_test_acc = test_acc
        return record

    def _snapshot(self) -> None:
        meta, arrays = self.snapshots.take(self.model, self.hooks, self.ctx)
        version = max(self.store.snapshot_version, self.snap_base) + 1
        snap = self.store.add_snapshot(self.step, self.step / self.steps_per_epoch, meta, arrays, version=version)
        self.folder.write_snapshot(snap.version, snap.step, snap.epoch, snap.meta, arrays)
        self._last_snapshot_step = self.step

    def _checkpoint(self) -> None:
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise Diverged(divergence_message(self.step, self._epoch(), self.config, {f"weight {name}": float("nan")}))
        self.folder.save_checkpoint({
            "model": self.model.state_dict(), "effective_model": effective_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "hooks": {label: hook.state_dict() for label, hook in self.hooks},
            "step": self.step, "epoch": self.step / self.steps_per_epoch, "elapsed_s": self._elapsed(),
            "metric_seq": self.store.metric_version, "snapshot_version": self.store.snapshot_version,
            "input_shape": list(self.data.input_shape), "num_classes": self.data.num_classes,
        })
        self.last_checkpoint_step, self._last_checkpoint_time = self.step, time.perf_counter()

    def _checkpoint_due(self) -> bool:
        """``checkpoint_every_steps`` steps since the last checkpoint, or (None) ``AUTO_CHECKPOINT_S`` seconds."""
        every = self.config.checkpoint_every_steps
        if every is not None:
            return self.step - self.last_checkpoint_step >= every
        return time.perf_counter() - self._last_checkpoint_time >= AUTO_CHECKPOINT_S

    def _epoch(self) -> int:
        return min(self.step // self.steps_per_epoch, self.config.epochs - 1)

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            self._setup()
            self._t0, self._paused = time.perf_counter(), 0.0
            self.last_checkpoint_step, self._last_snapshot_step = self.step, -1
            self._last_checkpoint_time = time.perf_counter()
            self.last_test_acc, self._top_class_share = None, 0.0
            try:
                return self._loop()
            except Diverged as exc:
                return Outcome("diverged", f"{exc} The last good checkpoint (step {self.last_checkpoint_step}) is kept."
                               + self._resume_suffix(), self.step)
        finally:
            self.folder.close()

    def _at_boundary(self, every: int) -> bool:
        if every > 0:
            return self.step % every == 0
        return self.step % self.steps_per_epoch == 0

    def _loop(self) -> Outcome:
        cfg = self.config
        if self.step == 0:
            self._evaluate()
            self._snapshot()
            self._checkpoint()
        self.control.on_progress(self.step, self._epoch(), self.total_steps, self._elapsed(), self.last_test_acc)
        while self.step < self.total_steps:
            epoch, start_batch = divmod(self.step, self.steps_per_epoch)
            for batch in self.feed.epoch(epoch, start_batch):
                self._paused += self.control.wait_if_paused()
                if self.control.should_stop():
                    self._checkpoint()
                    return Outcome("stopped", f"stopped by request at step {self.step} of {self.total_steps}" + self._resume_suffix(), self.step)
                self._apply_threads()
                self._train_step(batch)
                self.control.on_progress(self.step, self._epoch(), self.total_steps, self._elapsed(), self.last_test_acc)
                if self._at_boundary(cfg.eval_every) or self.step == self.total_steps:
                    self._evaluate()
                    self._checkpoint()
                elif self._checkpoint_due():
                    self._checkpoint()  # so a killed process loses at most these steps
                if cfg.snapshot_every and self._at_boundary(cfg.snapshot_every):
                    self._snapshot()
                self._pace()
                if self.step >= self.total_steps:
                    break
        if self._last_snapshot_step != self.step:
            self._snapshot()
        self.control.on_progress(self.step, self._epoch(), self.total_steps, self._elapsed(), self.last_test_acc)
        acc = f"; test accuracy {self.last_test_acc:.4f}" if self.last_test_acc is not None else ""
        warning = self._collapse_warning()
        message = f"finished {self.total_steps} steps{acc}" + (f". Warning: {warning}" if warning else "")
        return Outcome("finished", message + self._resume_suffix(), self.step, warning)

    def _pace(self) -> None:
        """With ``pace_s`` set, wait until ``pace_s * step / total_steps`` seconds of training have
        passed, so a short run lasts long enough to watch; a stop request ends the wait at once."""
        if not self.config.pace_s:
            return
        target = self.config.pace_s * self.step / self.total_steps
        while (ahead := target - self._elapsed()) > 0 and not self.control.should_stop():
            time.sleep(min(ahead, 0.1))

    def _resume_suffix(self) -> str:
        return f" ({self.resume_note})" if self.resume_note else ""

    def _collapse_warning(self) -> str:
        """A run that ends predicting (almost) one class at chance accuracy "collapsed" (a learning
        rate far too high, say): finished, but flagged, as a diverged run is."""
        if self.last_test_acc is None or self._top_class_share < COLLAPSE_CLASS_SHARE:
            return ""
        labels = self.data.test_labels
        chance = torch.bincount(labels.cpu()).max().item() / len(labels)
        if self.last_test_acc > chance + COLLAPSE_MARGIN:
            return ""
        cfg = self.config
        return (f"collapsed: test accuracy at chance ({100 * chance:.0f} %), the model predicts one class for "
                f"{100 * self._top_class_share:.0f} % of test images. Likely cause: the learning rate lr={cfg.lr:g} "
                f"is too high for {cfg.optimizer} (try 10x lower)")

    def _apply_threads(self) -> None:
        n = self.control.num_threads()
        if n is not None and n != self._threads:
            torch.set_num_threads(n)  # per thread with torch's OpenMP backend
            self._threads = n

    def _train_step(self, batch) -> None:
        cfg, ctx = self.config, self.ctx
        ctx.step, ctx.epoch = self.step, self._epoch()
        lr = learning_rate(self.step, self.total_steps, cfg)
        scale = lr / cfg.lr
        for group in self.optimizer.param_groups:
            # Each group keeps its own starting rate (a hook may add a group with its own "lr",
            # e.g. k-means centroids); the schedule scales every group alike.
            group["lr"] = group.setdefault("base_lr", group["lr"]) * scale
        features = t_logits = t_features = None
        reseed_dropout(self.model, cfg.seed, self.step)  # masks of its own: not drawn from the threads' shared RNG
        if self.needs_features:
            logits, features = self.model.forward_with_features(batch.images)
        else:
            logits = self.model(batch.images)
        if self.cache is not None:
            t_logits = self.cache[batch.indices]
        elif self.teacher is not None:
            with torch.no_grad():
                if self.needs_features:
                    t_logits, t_features = self.teacher.forward_with_features(batch.images)
                else:
                    t_logits = self.teacher(batch.images)
        sb = StepBatch(batch.images, batch.labels, batch.indices, logits, features, t_logits, t_features)
        parts = self.method.loss(ctx, sb)
        total, terms = parts.total, {}
        for label, hook in self.hooks:
            for key, term in hook.loss_terms(ctx, sb).items():
                terms[f"{label}/{key}"] = term
                total = total + term
        names = ["loss", "soft", "hard", *terms]
        values = dict(zip(names, torch.stack([total, parts.soft, parts.hard, *terms.values()]).detach().double().tolist()))
        if self._loss_limit is None:
            self._loss_limit = EXPLOSION_FACTOR * max(1.0, abs(values["loss"]))
        if not all(math.isfinite(v) for v in values.values()) or values["loss"] > self._loss_limit:
            raise Diverged(divergence_message(self.step + 1, self._epoch(), cfg, values, self._loss_limit))
        self.optimizer.zero_grad(set_to_none=True)
        if total.requires_grad:
            total.backward()
            try:
                self.optimizer.step()
            except RuntimeError as exc:  # lr * grad beyond float range: torch refuses the update itself
                if "overflow" not in str(exc):
                    raise
                raise Diverged(divergence_message(self.step + 1, self._epoch(), cfg, {**values, "weight update": math.inf})) from None
        self.step += 1
        ctx.step = self.step
        for _, hook in self.hooks:
            hook.after_step(ctx)
        if self.step % cfg.log_every == 0:
            self._record({"kind": "step", "step": self.step, "epoch": self.step / self.steps_per_epoch, "t": self._elapsed(), "lr": lr, **values})
