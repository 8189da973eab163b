"""Fault injection: kill `event-platform ingest` at every stage, and feed it every bad input.

    .venv/bin/python -m benchmarks.fault_campaign [--quick] [--kill-lines 2000000]

Kill campaign: for each stage (landing, mid-write, during COMMIT, checks, reconciliation,
publication) one ingest of a generated file is SIGKILLed when its progress line names the stage;
then the next ingest of another file must finish promptly with the generator's counts, no run may
be left unfinished, and ingesting the killed file again must give its truth.

Bad inputs: empty, BOM only, random bytes, gzip, UTF-16, NUL bytes, invalid UTF-8, a 200 MB line,
a folder, a FIFO, symlinks, odd names, a file appended to while it is ingested, deep nesting, 10k
keys and huge numbers. Each must end in a clear exit (a summary, or one line for a usage error),
never a traceback, with every line of the file accounted for (stored, rejected or a duplicate)
and reconciliation passing; a later ingest must still work.

Everything runs in a scratch folder with its own DAGSTER_HOME; prints one table per part and
exits 1 when any row misses its expectation. `--quick` sizes it for CI.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(Path(sys.executable).with_name("event-platform"))
UNFINISHED = {"NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
# Stage -> the progress text that tells the ingest has reached it (stderr, not a terminal).
KILL_POINTS = {
    "landing": ": landing",
    "mid-write": ": storing",
    "during COMMIT": ": committing",
    "checks": ": checking",
    "reconciliation": ": reconciling",
    "publication": "snapshot: publishing",
}
# Seconds to let a stage run after its line appears, so the kill lands inside it.
KILL_DELAY = {"mid-write": 1.0}


def valid_line(n: int) -> str:
    return (
        '{"event_type": 3, "event_time": "2020-02-02 10:00:00", "data": {"user_email": '
        f'"fault{n}@example.com", "phone_number": "0611{n:06d}"}}, "processing_date": '
        '"2020-02-02"}'
    )


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    seconds: float

    @property
    def summaries(self) -> list[dict]:
        found = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    @property
    def message(self) -> str:
        summary = self.summaries[0] if self.summaries else {}
        if summary.get("error"):
            return str(summary["error"])
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        notices = [line for line in lines if "progress" not in line]
        return notices[-1] if notices else ("ok" if self.exit_code == 0 else "")


@dataclass
class Row:
    case: str
    outcome: Outcome
    expected: str
    found: str
    ok: bool
    notes: list[str] = field(default_factory=list)


def run(args: list[str], env: dict[str, str], timeout: float, *, during=None) -> Outcome:
    """Run the CLI; peak RSS of that process alone (wait4), seconds, output."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([SCRIPT, *args], env=env, cwd=ROOT, stdout=out, stderr=err)
        if during is not None:
            during(process)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss / 1024,
            time.monotonic() - started,
        )


def generate(workdir: Path, name: str, lines: int, seed: int) -> tuple[Path, dict]:
    path = workdir / "inputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [SCRIPT, "generate", "--lines", str(lines), "--seed", str(seed), "--output", str(path)],
        check=True,
        capture_output=True,
    )
    return path, json.loads(Path(f"{path}.truth.json").read_text())


def unfinished_runs(home: Path) -> list[str]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r.run_id for r in instance.get_runs() if r.status.value in UNFINISHED]


def counts_match(summary: dict, lines: int, valid: int) -> bool:
    accounted = (summary.get("valid") or 0) + (summary.get("rejected") or 0)
    accounted += summary.get("duplicates") or 0
    return (
        summary.get("lines") == lines
        and accounted == lines
        and summary.get("valid") == valid
        and summary.get("reconciliation_passed") is True
    )


def kill_campaign(workdir: Path, env: dict[str, str], lines: int) -> list[Row]:
    rows = []
    home = Path(env["DAGSTER_HOME"])
    for index, (point, text) in enumerate(KILL_POINTS.items()):
        victim, victim_truth = generate(workdir, f"kill-{index}.jsonl", lines, seed=100 + index)
        log = workdir / f"kill-{index}.log"
        started = time.monotonic()
        with log.open("wb") as err:
            process = subprocess.Popen(
                [SCRIPT, "ingest", str(victim)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            killed = False
            while process.poll() is None and time.monotonic() - started < 600:
                if text in log.read_text(errors="replace"):
                    time.sleep(KILL_DELAY.get(point, 0.0))
                    process.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.01)
            process.wait()
        nxt, nxt_truth = generate(workdir, f"after-kill-{index}.jsonl", 2_000, seed=200 + index)
        after = run(["ingest", "--json", str(nxt)], env, timeout=180)
        [summary] = after.summaries or [{}]
        next_ok = after.exit_code == 0 and counts_match(
            summary, nxt_truth["lines"], nxt_truth["valid"]
        )
        left = unfinished_runs(home)
        again = run(["ingest", "--json", str(victim)], env, timeout=600)
        [victim_summary] = again.summaries or [{}]
        recovered = counts_match(victim_summary, victim_truth["lines"], victim_truth["valid"])
        row = Row(
            f"SIGKILL {point}",
            after,
            f"next {nxt_truth['lines']} lines ok, 0 unfinished; "
            f"killed file {victim_truth['valid']} valid",
            f"next {'ok' if next_ok else 'WRONG'} in {after.seconds:.1f}s, {len(left)} "
            f"unfinished; killed file {victim_summary.get('valid')} valid",
            killed and next_ok and not left and recovered,
        )
        if not killed:
            row.notes.append(f"never reached {point!r}")
        rows.append(row)
    return rows


@dataclass
class BadInput:
    name: str
    make: object  # Callable[[Path], Path]: builds the input, returns the path to ingest
    lines: int | None  # None: a usage error (exit 2) is expected
    valid: int = 0
    exit_code: int = 0


def _write(data: bytes, name: str):
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _valid_lines(count: int, start: int = 0) -> bytes:
    return b"".join(valid_line(start + n).encode() + b"\n" for n in range(count))


def _fifo(folder: Path) -> Path:
    path = folder / "fifo.jsonl"
    os.mkfifo(path)
    return path


def _folder(folder: Path) -> Path:
    path = folder / "folder.jsonl"
    path.mkdir()
    return path


def _symlink(relative: bool, start: int):
    def make(folder: Path) -> Path:
        target = folder / f"target-{start}.jsonl"
        target.write_bytes(_valid_lines(5, start))
        link = folder / f"link-{'rel' if relative else 'abs'}.jsonl"
        link.symlink_to(target.name if relative else target)
        return link

    return make


def _long_line(megabytes: int):
    def make(folder: Path) -> Path:
        path = folder / "long-line.jsonl"
        with path.open("wb") as out:
            out.write(_valid_lines(3, 900))
            out.write(b'{"pad": "')
            block = b"x" * (1 << 20)
            for _ in range(megabytes):
                out.write(block)
            out.write(b'"}\n')
            out.write(_valid_lines(3, 950))
        return path

    return make


def bad_inputs(quick: bool) -> list[BadInput]:
    rng = random.Random(7)  # noqa: S311 - reproducible test bytes, not a secret
    noise = rng.randbytes(10 * 1024 * 1024)
    nested = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    many_keys = b"{" + b", ".join(f'"k{n}": {n}'.encode() for n in range(10_000)) + b"}\n"
    huge = (
        b'{"event_type": 1' + b"0" * 400 + b', "event_time": "2020-02-02 10:00:00", '
        b'"data": {"user_email": "a@b.co", "phone_number": "0600000000"}, '
        b'"processing_date": "2020-02-02"}\n'
        b'{"event_type": 1e999, "event_time": 2e308}\n'
    )
    utf16 = (valid_line(1) + "\n").encode("utf-16")
    return [
        BadInput("empty file", _write(b"", "empty.jsonl"), 0),
        BadInput("BOM only", _write(b"\xef\xbb\xbf", "bom.jsonl"), 0),
        BadInput("10 MB of random bytes", _write(noise, "noise.jsonl"), None),
        BadInput("gzip", _write(gzip.compress(_valid_lines(50)), "gz.jsonl"), None),
        BadInput("UTF-16", _write(utf16, "utf16.jsonl"), None),
        BadInput("NUL bytes", _write(b"\x00" * 64 + b"\n\x00\n", "nul.jsonl"), 2),
        BadInput(
            "invalid UTF-8",
            _write(b"u12\xff\xfe@x\n" + _valid_lines(2, 10) + b"\xc3(\n", "bad-utf8.jsonl"),
            4,
            valid=2,
        ),
        BadInput(f"{20 if quick else 200} MB line", _long_line(20 if quick else 200), 7, valid=6),
        BadInput("a folder", _folder, None, exit_code=2),
        BadInput("a FIFO", _fifo, None, exit_code=2),
        BadInput("absolute symlink", _symlink(False, 300), 5, valid=5),
        BadInput("relative symlink", _symlink(True, 400), 5, valid=5),
        BadInput("odd name", _write(_valid_lines(3, 500), " -odd näme 'x' .jsonl"), 3, valid=3),
        BadInput("deeply nested JSON", _write(nested, "nested.jsonl"), 1),
        BadInput("10k keys", _write(many_keys, "keys.jsonl"), 1),
        BadInput("huge numbers", _write(huge, "huge.jsonl"), 2),
    ]


def _count_lines(path: Path) -> int:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def bad_input_campaign(workdir: Path, env: dict[str, str], quick: bool) -> list[Row]:
    folder = workdir / "bad"
    folder.mkdir()
    rows = []
    for case in bad_inputs(quick):
        path = case.make(folder)
        outcome = run(["ingest", "--json", str(path)], env, timeout=600)
        rows.append(_judge(case, path, outcome))
    rows.append(_appended_while_ingesting(workdir, env))
    return rows


def _judge(case: BadInput, path: Path, outcome: Outcome) -> Row:
    traceback = "Traceback" in outcome.stdout + outcome.stderr
    if case.lines is None and case.exit_code == 2:
        one_line = len([line for line in outcome.stderr.splitlines() if line.strip()]) == 1
        ok = outcome.exit_code == 2 and one_line and not traceback
        return Row(case.name, outcome, "usage error (exit 2), one line", "", ok)
    lines = case.lines if case.lines is not None else _count_lines(path)
    [summary] = outcome.summaries or [{}]
    ok = outcome.exit_code in (0, 1) and not traceback and counts_match(summary, lines, case.valid)
    found = (
        f"{summary.get('lines')} lines: {summary.get('valid')} stored, "
        f"{summary.get('rejected')} rejected, {summary.get('duplicates')} dup"
    )
    return Row(case.name, outcome, f"{lines} lines: {case.valid} stored", found, ok)


def _appended_while_ingesting(workdir: Path, env: dict[str, str]) -> Row:
    """Lines appended while the file is ingested: the run either stores one consistent version
    or fails saying the file changed; ingesting it again then stores every line."""
    path, truth = generate(workdir, "appended.jsonl", 300_000, seed=77)
    extra = _valid_lines(1_000, 10_000)

    def append_soon(process: subprocess.Popen) -> None:
        def append() -> None:
            time.sleep(0.5)
            with path.open("ab") as out:
                out.write(extra)

        threading.Thread(target=append, daemon=True).start()

    first = run(["ingest", "--json", str(path)], env, timeout=600, during=append_soon)
    again = run(["ingest", "--json", str(path)], env, timeout=600)
    [summary] = again.summaries or [{}]
    lines = truth["lines"] + 1_000
    ok = (
        first.exit_code in (0, 1)
        and "Traceback" not in first.stdout + first.stderr
        and counts_match(summary, lines, truth["valid"] + 1_000)
    )
    found = f"first run exit {first.exit_code}; again: {summary.get('lines')} lines"
    row = Row("appended while ingesting", first, f"again: {lines} lines", found, ok)
    return row


def table(title: str, rows: list[Row]) -> str:
    out = [
        f"\n## {title}\n",
        "| case | ok | exit | expected | found | peak RSS MB | seconds | message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        message = (row.outcome.message or "")[:110].replace("|", "/")
        notes = f" ({'; '.join(row.notes)})" if row.notes else ""
        out.append(
            f"| {row.case} | {'yes' if row.ok else 'NO'} | {row.outcome.exit_code} | "
            f"{row.expected} | {row.found}{notes} | {row.outcome.peak_rss_mb:,.0f} | "
            f"{row.outcome.seconds:.1f} | {message} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes for CI (a few minutes)")
    parser.add_argument("--kill-lines", type=int, help="lines of each killed file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--only", choices=("kills", "inputs"), help="run one part")
    args = parser.parse_args(argv)
    kill_lines = args.kill_lines or (300_000 if args.quick else 2_000_000)
    workdir = Path(tempfile.mkdtemp(prefix="fault-campaign-"))
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster" / "dev.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENT_PLATFORM_", "DAGSTER"))}
    env |= {"DAGSTER_HOME": str(home), "EVENT_PLATFORM_DATA_DIR": str(workdir / "data")}
    started = time.monotonic()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows: list[Row] = []
    try:
        if args.only in (None, "kills"):
            kills = kill_campaign(workdir, env, kill_lines)
            print(table(f"Kill campaign ({kill_lines:,}-line files)", kills), flush=True)
            rows += kills
        if args.only in (None, "inputs"):
            inputs = bad_input_campaign(workdir, env, args.quick)
            check, check_truth = generate(workdir, "afterwards.jsonl", 5_000, seed=999)
            later = run(["ingest", "--json", str(check)], env, timeout=300)
            [summary] = later.summaries or [{}]
            ok = counts_match(summary, check_truth["lines"], check_truth["valid"])
            inputs.append(Row("a later ingest", later, "truth", "ok" if ok else "WRONG", ok))
            print(table("Bad inputs", inputs), flush=True)
            rows += inputs
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [row.case for row in rows if not row.ok]
    kills = [row for row in rows if row.case.startswith("SIGKILL")]
    print(
        f"\n{len(rows)} cases in {time.monotonic() - started:.0f}s; kills {len(kills)}, "
        f"recovered {sum(row.ok for row in kills)}; failed: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
