"""The command line end to end, in a subprocess: train one epoch on digits, list runs, bad flags."""
import json
import os
import subprocess
import sys

from kdviz.engine import open_run
from kdviz.engine.cli import main

ENV = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def kdviz(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kdviz", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=ENV)


def test_train_one_epoch_then_list_runs(tmp_path, capsys):
    out = kdviz("train", "--dataset", "digits", "--model", "mlp", "--model-options", '{"hidden": [32]}', "--epochs", "1",
                "--lr", "0.1", "--probe-temperatures", "1,4", "--snapshot-every", "10", "--name", "cli run", "--runs-root",
                str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "finished: finished 22 steps" in out.stdout
    assert "22/22" in out.stderr  # the tqdm progress bar
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.endswith("cli-run")
    config = json.loads((run / "config.json").read_text())
    assert config["model_options"] == {"hidden": [32]} and config["probe_temperatures"] == [1, 4]
    reader = open_run(run)
    assert reader.status()["state"] == "finished"
    assert len(reader.metrics("step")) == 22 and reader.metrics("eval")[-1]["test_acc"] > 0.3
    assert [s.step for s in reader.snapshots_since(0)[0]] == [0, 10, 20, 22]
    assert main(["runs", "--runs-root", str(tmp_path)]) == 0  # in-process: a second interpreter costs ~10 s here
    listing = capsys.readouterr().out
    assert run.name in listing and "finished" in listing and "22/22" in listing


def test_bad_flags_give_a_clear_error_and_exit_code_2(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--method", "kd", "--runs-root", str(tmp_path)]) == 2
    assert "needs a teacher" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written for a config that never started
    assert main(["train", "--dataset", "digits", "--T", "-1", "--runs-root", str(tmp_path)]) == 2
    assert "T must be > 0" in capsys.readouterr().err


def test_resume_has_force_and_every_command_takes_debug():
    from kdviz.engine.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["resume", "runs/x", "--epochs", "5", "--force"])
    assert (args.path, args.epochs, args.force) == ("runs/x", 5, True)
    assert parser.parse_args(["resume", "runs/x"]).force is False
    assert parser.parse_args(["train", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "runs"]).debug is True
    assert not hasattr(parser.parse_args(["hooks"]), "debug")  # main() fills in False


def test_missing_run_folder_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["resume", str(tmp_path / "gone")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gone is not a run folder" in err and "Traceback" not in err
    assert main(["resume", str(tmp_path / "gone"), "--debug"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
