"""Lottery tickets on LeNet-300-100 / MNIST (Frankle & Carbin 2019, Figure 3's direction), plus 2:4 vs 50%.

Frankle & Carbin, "The Lottery Ticket Hypothesis" (ICLR 2019), Figure 3: on LeNet-300-100 / MNIST,
winning tickets found by iterative magnitude pruning (p = 20% per round per layer, the output layer
at 10%, survivors reset to theta_0) keep the dense test accuracy down to a few percent of the
weights, while the same masks on a random re-initialisation lose accuracy as soon as ~20% remain.

What this script does, per seed (the maths of ``kdviz.prune.lottery`` and ``kdviz.prune.n_m``; a
plain minibatch loop, ``kdviz.prune.fine_tune``, re-applying the mask after every step):
1. trains the dense network for ``--epochs`` (SGD, lr 0.1, batch 128: open_lth's LeNet-300-100
   settings, fewer epochs), capturing theta_k at ``--rewind-step`` (0: the initialisation);
2. ``--rounds`` IMP rounds: prune p of the survivors, rewind to theta_k, train again; at the rounds
   in ``--control-rounds`` also trains the same mask from a fresh random init (the control);
3. from the dense network: one-shot 2:4 and one-shot unstructured 50% (per layer), each fine-tuned
   ``--fine-tune-epochs`` at lr / 10; accuracy before and after fine-tuning.
Prints, per round, weights kept, ticket / control accuracy (mean over seeds and each seed), and the
2:4 vs unstructured table; pass criteria: the ticket at 10-20% of weights within 0.5 points of dense
(mean), and above the control.

    python bench/lottery_ticket.py [--quick] [--seeds 0 1 2] [--data-root /work/shared/data/mnist]
"""
from __future__ import annotations

import argparse
import statistics
import time

from _common import DEFAULT_MNIST, machine_note, set_threads  # first: makes idle OpenMP threads sleep

import torch  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.prune import PruningMasks, accuracy, fine_tune  # noqa: E402
from kdviz.prune.lottery import capture_weights, next_ticket_masks, random_reinit, rewind  # noqa: E402
from kdviz.prune.n_m import n_m_masks  # noqa: E402


def train(model, masks, data, epochs: float, lr: float, seed: int, batch: int = 128, capture_at: int | None = None):
    """SGD (momentum 0) for ``epochs`` on the training set with ``masks`` held; returns theta at
    step ``capture_at`` (None: nothing captured) and the seconds taken."""
    steps = max(1, round(epochs * len(data.train_labels) / batch))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    start, captured = time.perf_counter(), None
    if capture_at is not None and capture_at > 0:
        fine_tune(model, masks, data.train_images, data.train_labels, opt, capture_at, batch, generator=g)
        captured, steps = capture_weights(model), max(0, steps - capture_at)
    fine_tune(model, masks, data.train_images, data.train_labels, opt, steps, batch, generator=g)
    return captured, time.perf_counter() - start


def test_acc(model, data) -> float:
    return accuracy(model, data.test_images, data.test_labels)


def one_seed(args, data, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_model("lenet300", input_shape=data.input_shape, num_classes=data.num_classes)
    theta0 = capture_weights(model)
    captured, secs = train(model, None, data, args.epochs, args.lr, seed, capture_at=args.rewind_step)
    theta_k = theta0 if args.rewind_step == 0 else captured
    dense_state = capture_weights(model)
    out = {"dense": test_acc(model, data), "rounds": [], "seconds": secs}
    masks = None
    for r in range(1, args.rounds + 1):
        masks = next_ticket_masks(model, masks, args.prune_fraction, scope=args.scope)
        kept = 1.0 - masks.overall_sparsity()
        rewind(model, theta_k, masks)
        train(model, masks, data, args.epochs, args.lr, seed)
        record = {"round": r, "kept": kept, "ticket": test_acc(model, data), "control": None}
        if r in args.control_rounds:
            trained = capture_weights(model)
            random_reinit(model, 10_000 + seed, masks)
            train(model, masks, data, args.epochs, args.lr, seed)
            record["control"] = test_acc(model, data)
            rewind(model, trained, masks)  # back to the ticket's trained weights for the next round's mask
        out["rounds"].append(record)
        print(f"  seed {seed} round {r}: {kept:6.1%} kept, ticket {record['ticket']:.2%}"
              + (f", re-init {record['control']:.2%}" if record["control"] is not None else ""), flush=True)
    out["n_m"] = n_m_versus_unstructured(model, dense_state, data, args, seed)
    return out


def n_m_versus_unstructured(model, dense_state, data, args, seed: int) -> dict:
    """2:4 against unstructured 50% per layer, both one-shot from the dense network, then fine-tuned."""
    results = {}
    for kind in ("2:4", "unstructured 50%"):
        rewind(model, dense_state, None)
        if kind == "2:4":
            masks, _ = n_m_masks(model, 2, 4)
        else:
            masks = next_ticket_masks(model, PruningMasks.dense(model), 0.5, output_fraction=0.5)
        masks.apply(model)
        before = test_acc(model, data)
        train(model, masks, data, args.fine_tune_epochs, args.lr / 10, seed)
        results[kind] = {"sparsity": masks.overall_sparsity(), "one_shot": before, "fine_tuned": test_acc(model, data)}
    return results


def mean(values):
    values = [v for v in values if v is not None]
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0) if values else (None, None)


def report(results: list[dict], args, seconds: float) -> bool:
    seeds = ", ".join(str(s) for s in args.seeds)
    dense, dense_sd = mean([r["dense"] for r in results])
    print(f"\nLeNet-300-100 on {args.dataset}, seeds {seeds}, {args.epochs} epochs per round, p = {args.prune_fraction}, "
          f"rewind to step {args.rewind_step}; {seconds:.0f} s; {machine_note()}")
    print(f"dense: {dense:.2%} +- {dense_sd:.2%}")
    print(f"{'round':>5} {'kept':>7} {'ticket (mean +- sd)':>22} {'re-init (mean +- sd)':>22}   per seed (ticket / re-init)")
    passed_match = passed_beat = None
    for i in range(args.rounds):
        rows = [r["rounds"][i] for r in results]
        kept = statistics.fmean(x["kept"] for x in rows)
        t, tsd = mean([x["ticket"] for x in rows])
        c, csd = mean([x["control"] for x in rows])
        seeds_text = "  ".join(f"{x['ticket']:.2%}/{'-' if x['control'] is None else format(x['control'], '.2%')}" for x in rows)
        print(f"{i + 1:>5} {kept:7.1%} {t:14.2%} +- {tsd:5.2%} {'' if c is None else format(c, '14.2%') + ' +- ' + format(csd, '5.2%'):>22}   {seeds_text}")
        if 0.10 <= kept <= 0.20:
            passed_match = (passed_match is not False) and t >= dense - 0.005
            if c is not None:
                passed_beat = (passed_beat is not False) and t > c
    print("\nN:M against unstructured at the same sparsity (one-shot from dense, then fine-tuned):")
    for kind in ("2:4", "unstructured 50%"):
        rows = [r["n_m"][kind] for r in results]
        one, one_sd = mean([x["one_shot"] for x in rows])
        fin, fin_sd = mean([x["fine_tuned"] for x in rows])
        print(f"  {kind:>17}: sparsity {rows[0]['sparsity']:.1%}, one-shot {one:.2%} +- {one_sd:.2%}, "
              f"fine-tuned {fin:.2%} +- {fin_sd:.2%}")
    print(f"\nticket at 10-20% of weights within 0.5 points of dense: {passed_match}; beats random re-init: {passed_beat}")
    return bool(passed_match and passed_beat)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits, 4 rounds, seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-root", default=str(DEFAULT_MNIST))
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--prune-fraction", type=float, default=0.2)
    parser.add_argument("--scope", choices=("layer", "global"), default="layer")
    parser.add_argument("--rewind-step", type=int, default=0)
    parser.add_argument("--control-rounds", type=int, nargs="*", default=[8, 9])
    parser.add_argument("--fine-tune-epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.dataset, data = "digits", load_dataset("digits")
        args.seeds, args.rounds, args.epochs, args.control_rounds = args.seeds[:1], 4, 8.0, [2, 4]
    else:
        args.dataset, data = "MNIST", load_dataset("mnist", root=args.data_root)
    start = time.perf_counter()
    results = [one_seed(args, data, seed) for seed in args.seeds]
    ok = report(results, args, time.perf_counter() - start)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
