"""Mutation testing of the core with mutmut: run it, score it, record it, guard it.

    python .ci/mutation/mutation.py run [FILE ...]   # `make mutate [FILES=…]`
    python .ci/mutation/mutation.py report [--record]
    python .ci/mutation/mutation.py survivors [FILE ...]  # each survivor's diff
    python .ci/mutation/mutation.py check            # CI: `make mutate-check`

The modules mutated and the tests run are in pyproject.toml ([tool.mutmut]); mutmut
keeps its results in mutants/ (git-ignored). Beside this script:

- equivalents.toml: the surviving mutants that change no behaviour, each with the reason;
  they are left out of the score.
- scores.json: what `report --record` wrote for each module run in full: the source's
  sha256, the counts, the score, the survivors' names and how many mutants each
  function has (mutmut numbers them, so that names every mutant of an unchanged file).

A score is killed / (mutants - equivalents), where killed counts mutants a test failed
on, timed out on (a loop that never ends) or that the process crashed on; a mutant no
selected test reaches counts as a survivor. Each area must reach 95 %.

`check` is what CI runs, within its time: a seeded sample of at most --budget mutants,
in all, of the core modules whose source changed since the record, and a seeded sample
of --sample mutants the record says were killed in the unchanged modules. It fails when
a changed module's sample scores below its recorded score (or 95 %) by more than one
mutant, or when a mutant once killed survives: a test was weakened or removed. A module
with no record yet (never run in full) is named and not guarded.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import random
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCORES = HERE / "scores.json"
EQUIVALENTS = HERE / "equivalents.toml"
MUTANTS = ROOT / "mutants"
TARGET = 0.95
# A mutant name no module has: `mutmut run` with it generates every mutant, traces which
# tests reach which function, and runs none.
NO_MUTANT = "no.such.module.x_nothing__mutmut_0"

# The areas of the core, as the mutation audit grouped them: each must reach TARGET.
AREAS: dict[str, tuple[str, ...]] = {
    "fold, mapping, policy, streams": (
        "projections/fold.py",
        "projections/mapping.py",
        "projections/policy.py",
        "projections/streams.py",
    ),
    "addresses": ("projections/recipients.py",),
    "erasure: redaction": ("projections/redaction.py",),
    "facts and providers": ("projections/facts.py", "projections/providers/*.py"),
    "ledger: chain, group commit, append and read": ("ledger/*.py",),
    "authentication and signatures": ("api/*.py",),
}

KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "type check", -11: "crash", -9: "crash"}  # fmt: skip
NOT_KILLED = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious"}


@dataclass
class Module:
    path: str
    results: dict[str, int | None] = field(default_factory=dict)

    def names(self, *, status: str | None = None) -> list[str]:
        return sorted(
            name for name, code in self.results.items() if status is None or state(code) == status
        )


def state(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    return NOT_KILLED.get(code, "suspicious")


def mutated_files() -> list[str]:
    """The core modules: pyproject's only_mutate patterns, as files, less do_not_mutate."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    skipped = config.get("do_not_mutate", [])
    files = {
        str(path.relative_to(ROOT))
        for pattern in config["only_mutate"]
        for path in ROOT.glob(pattern if pattern.endswith(".py") else pattern + ".py")
        if path.name != "__init__.py"
        and not any(fnmatch.fnmatch(str(path.relative_to(ROOT)), skip) for skip in skipped)
    }
    return sorted(files)


def module_glob(path: str) -> str:
    """The mutmut names of a file's mutants: `projections/fold.py` -> `projections.fold.*`."""
    return path.removesuffix(".py").replace("/", ".") + ".*"


def sha256(path: str) -> str:
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def area_of(path: str) -> str:
    for area, patterns in AREAS.items():
        if any(fnmatch.fnmatch(path, pattern) for pattern in patterns):
            return area
    raise SystemExit(f"{path} is mutated but in no area of {Path(__file__).name}")


def equivalents() -> dict[str, str]:
    """Mutant name -> why it changes no behaviour."""
    listed = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])
    return {entry["mutant"]: entry["reason"] for entry in listed}


def load(paths: list[str]) -> dict[str, Module]:
    modules = {}
    for path in paths:
        meta = MUTANTS / (path + ".meta")
        module = Module(path)
        if meta.exists():
            module.results = json.loads(meta.read_text())["exit_code_by_key"]
        modules[path] = module
    return modules


def mutmut(names: list[str], *, check: bool = True) -> None:
    """Run mutmut over `names` (globs or names; all mutants when empty); SystemExit when it
    fails, unless `check` is off (a run meant to match nothing may say so)."""
    command = [sys.executable, "-m", "mutmut", "run", *names]
    print("+", " ".join(command[1:4]), f"({len(names)} names)" if names else "(everything)")
    done = subprocess.run(command, cwd=ROOT, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"mutmut failed (exit {done.returncode})")


@dataclass
class Score:
    mutants: int
    equivalent: int
    killed: int
    survivors: list[str]

    @property
    def value(self) -> float:
        counted = self.mutants - self.equivalent
        return self.killed / counted if counted else 1.0


def score(module: Module, known: dict[str, str], names: set[str] | None = None) -> Score:
    results = {
        name: code for name, code in module.results.items() if names is None or name in names
    }
    killed = [name for name, code in results.items() if state(code) == "killed"]
    # A listed mutant that a test kills is no equivalent (its name may now number another
    # change of an edited source): counted as killed, not left out.
    equivalent = [name for name in results if name in known and name not in killed]
    survivors = sorted(
        name for name, code in results.items() if state(code) != "killed" and name not in known
    )
    return Score(len(results), len(equivalent), len(killed), survivors)


def report(paths: list[str], *, record: bool = False) -> int:
    known = equivalents()
    modules = load(paths)
    unchecked = [p for p, m in modules.items() if not m.results or m.names(status="not checked")]
    if unchecked:
        print(f"not (fully) run yet: {', '.join(unchecked)}")
    rows, by_area = [], dict[str, list[Score]]()
    for path, module in modules.items():
        got = score(module, known)
        by_area.setdefault(area_of(path), []).append(got)
        rows.append((path, got))
    width = max(len(path) for path, _ in rows)
    print(f"\n{'module':<{width}}  mutants  equivalent  killed  survived   score")
    for path, got in rows:
        # mutmut leaves decorated functions (properties) and module-level code alone
        shown = f"{got.value:6.1%}" if got.mutants else "   n/a  (no function mutmut mutates)"
        print(
            f"{path:<{width}}  {got.mutants:7}  {got.equivalent:10}  {got.killed:6}  "
            f"{len(got.survivors):8}  {shown}"
        )
    failed = False
    print()
    for area, scores in by_area.items():
        total = Score(
            sum(s.mutants for s in scores),
            sum(s.equivalent for s in scores),
            sum(s.killed for s in scores),
            [name for s in scores for name in s.survivors],
        )
        verdict = "ok" if total.value >= TARGET else f"BELOW {TARGET:.0%}"
        failed |= total.value < TARGET
        counted = total.mutants - total.equivalent
        print(f"{area}: {total.killed}/{counted} = {total.value:.1%} {verdict}")
    survivors = [name for _, got in rows for name in got.survivors]
    if survivors:
        print(f"\n{len(survivors)} survivors (not in {EQUIVALENTS.name}):")
        for name in survivors:
            print(f"  {name}")
    if record:
        write_record([(path, got) for path, got in rows if path not in unchecked], modules)
    return 1 if failed else 0


def write_record(rows: list[tuple[str, Score]], modules: dict[str, Module]) -> None:
    """Record the modules run in full (each replaces its earlier record; the others keep
    theirs)."""
    recorded = json.loads(SCORES.read_text())["modules"] if SCORES.exists() else {}
    for path, got in rows:
        recorded[path] = {
            "sha256": sha256(path),
            "mutants": got.mutants,
            "equivalent": got.equivalent,
            "killed": got.killed,
            "score": round(got.value, 4),
            "functions": numbering(modules[path]),
            "survivors": got.survivors,
        }
    record = {"command": "make mutate", "target": TARGET, "modules": dict(sorted(recorded.items()))}
    SCORES.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\nrecorded {len(rows)} modules in {SCORES.relative_to(ROOT)}")


def numbering(module: Module) -> dict[str, int]:
    """mutmut names a function's mutants `<function>__mutmut_1` to `_N`: N per function
    is enough to name every mutant of an unchanged file again."""
    found: dict[str, set[int]] = {}
    for name in module.results:
        function, _, number = name.rpartition("__mutmut_")
        found.setdefault(function, set()).add(int(number))
    for function, numbers in found.items():
        if numbers != set(range(1, max(numbers) + 1)):
            raise SystemExit(f"{function}: mutants not numbered 1..N; mutmut changed?")
    return {function: max(numbers) for function, numbers in sorted(found.items())}


def named(entry: dict[str, Any]) -> list[str]:
    functions: dict[str, int] = entry["functions"]
    return [f"{f}__mutmut_{n}" for f, count in functions.items() for n in range(1, count + 1)]


def run(files: list[str]) -> int:
    core = mutated_files()
    chosen = [str(Path(f)) for f in files] or core
    outside = sorted(set(chosen) - set(core))
    if outside:
        raise SystemExit(f"not core modules (pyproject [tool.mutmut] only_mutate): {outside}")
    mutmut([module_glob(path) for path in chosen] if files else [])
    return report(chosen)


def check(budget: int, sample: int, seed: str) -> int:
    recorded = json.loads(SCORES.read_text())["modules"]
    core = mutated_files()
    missing = sorted(set(core) - set(recorded))
    if missing:  # not guarded until a full run of theirs is recorded
        print(f"no recorded score yet (make mutate, then report --record): {', '.join(missing)}")
    core = [path for path in core if path in recorded]
    changed = [path for path in core if sha256(path) != recorded[path]["sha256"]]
    print(f"changed since the record: {', '.join(changed) or 'none'}")
    rng = random.Random(seed)
    known = equivalents()
    # Recorded kills in unchanged modules, named as the record numbers them.
    pool = sorted(
        name
        for path in core
        if path not in changed
        for name in named(recorded[path])
        if name not in recorded[path]["survivors"] and name not in known
    )
    picked = rng.sample(pool, min(sample, len(pool)))
    # The changed modules' mutants: generated (and the tests traced) by a run that
    # matches none of them, then a seeded sample of at most `budget` in all is run.
    sampled: set[str] = set()
    if changed:
        mutmut([NO_MUTANT], check=False)
        generated = sorted(name for m in load(changed).values() for name in m.results)
        sampled = set(rng.sample(generated, min(budget, len(generated))))
        print(f"changed modules: a sample of {len(sampled)} of their {len(generated)} mutants")
    mutmut(sorted(sampled) + picked)
    modules = load(core)
    failures = []
    for path in changed:
        module = modules[path]
        names = sampled & set(module.results)
        got = score(module, known, names)
        floor = min(recorded[path]["score"], TARGET)
        line = f"{path}: {got.value:.1%} of {got.mutants} (recorded {recorded[path]['score']:.1%})"
        print(line)
        # one survivor more than the floor allows is within what a small sample can tell
        if got.killed + 1 < floor * (got.mutants - got.equivalent):
            failures.append(line + "; survivors: " + ", ".join(got.survivors[:20]))
    results = {name: code for m in modules.values() for name, code in m.results.items()}
    regressed = sorted(name for name in picked if state(results.get(name)) != "killed")
    print(f"{len(picked)} recorded kills re-run in unchanged modules: {len(regressed)} survive")
    if regressed:
        failures.append("once killed, now surviving: " + ", ".join(regressed))
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


def survivors(files: list[str]) -> int:
    """Print the diff of every survivor not listed as equivalent (of FILES, or all)."""
    known = equivalents()
    modules = load([str(Path(f)) for f in files] or mutated_files())
    for module in modules.values():
        for name in score(module, known).survivors:
            shown = subprocess.run(
                [sys.executable, "-m", "mutmut", "show", name],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            print(shown.stdout.strip() or f"# {name}: {state(module.results[name])}", end="\n\n")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="mutate the core (or FILES), then report")
    run_parser.add_argument("files", nargs="*", metavar="FILE")
    report_parser = commands.add_parser("report", help="scores of the last run")
    report_parser.add_argument("--record", action="store_true", help="write scores.json")
    survivors_parser = commands.add_parser("survivors", help="each survivor's diff")
    survivors_parser.add_argument("files", nargs="*", metavar="FILE")
    check_parser = commands.add_parser("check", help="CI: guard the recorded scores")
    check_parser.add_argument("--budget", type=int, default=40)
    check_parser.add_argument("--sample", type=int, default=60)
    check_parser.add_argument("--seed", default="")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.files)
    if args.command == "survivors":
        return survivors(args.files)
    if args.command == "report":
        return report(mutated_files(), record=args.record)
    seed = (
        args.seed
        or subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    return check(args.budget, args.sample, seed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
