"""Replay a saved latency run through other stabiliser settings, without the model.

``benchmarks/latency.py --json run.json`` saves every partial event. Each event's stable and
unstable text together are the hypothesis of that partial pass, so the hypotheses can be fed
again through :class:`harken.core.stabilizer.Stabilizer` with other settings and scored with
the same metrics (partial lag, flicker, contradicted stable words).

Usage: python benchmarks/stabilizer_replay.py run.json
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import latency  # noqa: E402

from harken.core.stabilizer import Stabilizer  # noqa: E402


def main() -> int:
    data = json.loads(Path(sys.argv[1]).read_text())
    utts = [latency.Utterance(u["name"], np.zeros(0, np.int16), u["offset"], u["speech_end"],
                              u["reference"], [(w, float(t)) for w, t in u["ref_words"]])
            for u in data["utterances"]]
    events = data["events"]["harken"]
    print(f"{'agreement':>9} {'holdback':>8} {'lag p50':>8} {'lag p95':>8} {'flicker':>8} "
          f"{'stable err':>10}")
    for agreement, holdback in itertools.product((2, 3), (0, 1, 2)):
        replayed = copy.deepcopy(events)
        stabilisers: dict[int, Stabilizer] = {}
        for ev in replayed:
            if ev["kind"] != "partial":
                continue
            stab = stabilisers.setdefault(ev["uid"], Stabilizer(agreement, holdback))
            ev["stable"], ev["unstable"] = stab.update(f"{ev['stable']} {ev['unstable']}")
        s = latency.score(latency.Run("harken", replayed), utts)
        print(f"{agreement:9d} {holdback:8d} {latency.percentile(s.lag, 50):8.2f} "
              f"{latency.percentile(s.lag, 95):8.2f} {np.mean(s.flicker):8.2f} "
              f"{np.mean(s.stable_errors):10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
