"""A worker's py-spy profile of PRD flows, put into the flow's parts.

    python bench/profile_flow.py PROFILE.txt [PROFILE.txt ...] [--flows 16] [--core-s 0.55] [--stacks]

PROFILE.txt is py-spy's raw output (`-f raw`: one collapsed stack and its count a line), as
`bench/scale.py --profile DIR` writes it for each worker. Each sample is put in one row, what work it is (the
innermost frame a rule knows, so a decode inside the likeness probe is decoding), and one column, which step
of the flow did it (the outermost frame a rule knows). With `--core-s` (the worker core-seconds per flow that
scale.py measured in the same run) the table is in core-milliseconds per flow: each part's share of the
samples times that; without it, in samples.

py-spy counts a thread's samples while it runs or waits for a core (it leaves out threads that sleep or wait
for the GIL), so on a loaded machine a thread is sampled about as long as it waited for its turn as well: the
shares are what counts, not the sample count. The event loop's wake-ups from `select` are such waits (epoll
itself costs nothing): they are shown apart and left out of the shares.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

#: What work a frame is, by rule: (row, regex on "function (path)"); the innermost frame that matches one names
#: the sample's row. Order matters only between rules that could match the same frame.
KINDS: list[tuple[str, str]] = [
    ("decoding", r"^decode_audio \(backend/audio/decode\.py\)"),
    ("encoding", r"^(float_to_wav|_mp3|StreamEncoder\.\w+|_Mp3Encoder\.\w+|render_as_mp3) \("),
    ("C2PA signing", r"\(backend/provenance/|\(c2pa/"),
    ("watermark: mark", r"^(mark|added) \(backend/watermark/api\.py\)"),
    ("watermark: detect", r"^detect \(backend/watermark/api\.py\)"),
    ("stock voice (once a process)", r"^stock_print \(backend/clone/likeness\.py\)"),
    ("voiceprints", r"\(backend/voiceprint/"),
    ("cleaning", r"^preprocess \(backend/audio/process\.py\)"),
    ("quality report", r"^(_analyse|measure|_report|_validate) \(backend/audio/(pipeline|measure)\.py\)"),
    ("speaker judged", r"\(backend/(consents/service|voiceprint/windows)\.py\)"),
    ("JSON / msgspec", r"\(msgspec/|\(json/|^(loads|dumps|encode|decode) \(backend/json"),
    ("provider HTTP", r"\(backend/providers/http\.py\)"),
    ("Storage", r"\(backend/storage/|\(standins/storage/"),
    ("database", r"\(psycopg/|\(psycopg_pool/|\(backend/db/"),
    ("queues", r"\(queue_consumers/|\(backend/queues\.py\)"),
]
#: Which step of the flow a frame is; the outermost that matches names the sample's column.
STEPS: list[tuple[str, str]] = [
    (
        "sample check",
        r"^(process_sample \(backend/samples/step\.py\)"
        r"|(SampleCheck\.)?(prepare_and_record|_prepare_and_print) \(backend/samples/check\.py\))",
    ),
    ("likeness probe", r"^(probe|_scores|_judge) \(backend/clone/likeness\.py\)"),
    ("samples' print", r"^(measure_samples|samples_print) \(backend/clone/likeness\.py\)"),
    ("clone", r"\(backend/clone/step\.py\)"),
    ("preview", r"\(backend/clone/preview_step\.py\)"),
    ("synthesis job", r"\(backend/synthesis/step\.py\)"),
    ("queues", r"\(queue_consumers/"),
]
#: The CPU executor's frames: work queued there is found again by what it runs.
_EXECUTOR = re.compile(r"\(backend/cpu\.py\)")
#: What the CPU executor runs, by the step it is for (the executor's thread has no caller on its stack).
RUNS: list[tuple[str, str]] = [
    ("sample check", r"^_prepare_and_print \("),
    ("samples' print", r"^samples_print \("),
    ("likeness probe", r"^_scores \("),
    ("preview", r"^marked_preview \("),
    ("synthesis job", r"^marked_wav \("),
]
_SELECT = re.compile(r"^(EpollSelector|SelectSelector|PollSelector)\.select \(")
_LINE = re.compile(r":\d+\)$")
_KINDS = [(name, re.compile(rule)) for name, rule in KINDS]
_STEPS = [(name, re.compile(rule)) for name, rule in STEPS]
_RUNS = [(name, re.compile(rule)) for name, rule in RUNS]
SIGNING = "C2PA signing"


def frames(stack: str) -> list[str]:
    """The stack's frames, outermost first, as "function (path)" without line numbers."""
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def kind_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, rule in _KINDS:
            if rule.search(frame):
                return name
    return "the rest"


def step_of(stack: list[str]) -> str:
    executor = any(_EXECUTOR.search(frame) for frame in stack)
    rules = _RUNS if executor else _STEPS
    for frame in stack:
        for name, rule in rules:
            if rule.search(frame):
                # The executor's thread signs for the preview and the job alike: which one, it does not say.
                return name
    if executor:
        return "signing (preview, job)" if any("backend/provenance/" in f for f in stack) else "other CPU work"
    return "event loop, other"


def read(paths: list[Path]) -> tuple[collections.Counter[tuple[str, str]], int]:
    """Samples by (row, column), and the event loop's samples in `select`."""
    table: collections.Counter[tuple[str, str]] = collections.Counter()
    waiting = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack_text, _, count = line.rpartition(" ")
            if not stack_text:
                continue
            stack, n = frames(stack_text), int(count)
            if _SELECT.search(stack[-1]):
                waiting += n
                continue
            table[kind_of(stack), step_of(stack)] += n
    return table, waiting


def report(table: collections.Counter[tuple[str, str]], waiting: int, *, flows: int, core_s: float | None) -> None:
    total = sum(table.values())
    if not total:
        sys.exit("no samples")
    scale = (core_s * 1000 / total) if core_s else 1 / flows
    unit = "core-ms per flow" if core_s else "samples per flow"
    kinds = sorted({k for k, _ in table}, key=lambda k: -sum(v for (r, _), v in table.items() if r == k))
    steps = sorted({s for _, s in table}, key=lambda s: -sum(v for (_, c), v in table.items() if c == s))
    width = max(len(k) for k in kinds) + 2
    print(f"{total} samples ({waiting} more of the event loop waking from select, left out); {unit}:\n")
    print(f"{'':{width}}{'total':>7} {'share':>6} | " + " ".join(f"{s[:14]:>14}" for s in steps))
    for kind in kinds:
        row = [table[kind, s] for s in steps]
        cells = " ".join(f"{v * scale:14.1f}" if v else f"{'':14}" for v in row)
        print(f"{kind:{width}}{sum(row) * scale:7.1f} {sum(row) / total:6.1%} | {cells}")
    columns = " ".join(f"{sum(table[k, s] for k in kinds) * scale:14.1f}" for s in steps)
    print(f"{'all':{width}}{total * scale:7.1f} {1:6.0%} | {columns}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy raw profiles (-f raw)")
    parser.add_argument("--flows", type=int, default=16, help="flows the profiles cover (without --core-s)")
    parser.add_argument("--core-s", type=float, help="worker core-seconds per flow measured in the same run")
    parser.add_argument("--stacks", type=int, default=0, help="also print the N heaviest leaf frames")
    args = parser.parse_args()
    table, waiting = read(args.profiles)
    report(table, waiting, flows=args.flows, core_s=args.core_s)
    if args.stacks:
        leaves: collections.Counter[str] = collections.Counter()
        for path in args.profiles:
            for line in path.read_text().splitlines():
                stack_text, _, count = line.rpartition(" ")
                if stack_text:
                    leaves[frames(stack_text)[-1]] += int(count)
        print()
        for leaf, n in leaves.most_common(args.stacks):
            print(f"{n:7d} {leaf}")


if __name__ == "__main__":
    main()
