"""deai's side of the comparison, run as its own process in deai's venv.

    python benchmarks/peers/deai_side.py run TASK.json      # run the task, print JSON on the last line
    python benchmarks/peers/deai_side.py export TASK.json DIR  # write the task's files for Flower

``run`` is ``deai simulate`` on the task's scenario (:func:`deai.sim.runner.run_scenario`, in-memory
transport, the whole protocol) and stamps the time each round ends; ``TASK.json`` is a
:class:`benchmarks.peers.task.PeerTask` as a dict.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))

from task import PeerTask, export, scenario_of  # noqa: E402

__all__ = ["main", "run"]


def run(task: PeerTask, threads: int) -> dict:
    import torch

    from deai.sim.runner import run_scenario

    torch.set_num_threads(threads)
    stamps: dict[int, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "training" and done not in stamps:
            stamps[done] = time.perf_counter() - T0

    report = run_scenario(scenario_of(task), progress=progress)
    return {
        "system": "deai",
        "rule": report["defense"],
        "accuracy": report["test_accuracy"],
        "rounds": report["rounds_completed"],
        "round_marks": [stamps[r] for r in sorted(stamps) if r >= 1],
        "seconds": time.perf_counter() - T0,
    }


def main() -> None:
    command, path = sys.argv[1], Path(sys.argv[2])
    task = PeerTask(**json.loads(path.read_text()))
    if command == "export":
        print(export(task, Path(sys.argv[3])))
    else:
        print(json.dumps(run(task, int(sys.argv[3]) if len(sys.argv) > 3 else 2)))


if __name__ == "__main__":
    main()
