"""What ``sipharness run`` and the pytest plugin share: choosing the number, profiles
and scenarios from user input, and writing the reports.

:func:`select` turns names and paths into loaded objects (one-line InputError naming
what is unknown); :func:`write_reports` writes ``results.json`` and, when the report
package is present, ``index.html``, ``junit.xml`` and ``summary.md``;
:func:`exit_code` maps a run to the CLI's exit code.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.numbers import NumberConfig, load_number_file
from harness.peers.profiles import Profile, list_profiles, load_profile
from harness.resources import data_dir
from harness.results import RunResults, Verdict
from harness.scenarios.loader import load_scenarios
from harness.scenarios.matrix import PEERS_DID_NOT_START
from harness.scenarios.model import Scenario

DEFAULT_OUT: Final = Path("reports/out")


def example_number_file() -> Path:
    """The bundled example number (``fixtures/numbers/example.yaml``)."""
    return data_dir("fixtures") / "numbers" / "example.yaml"


@dataclass(frozen=True)
class Selection:
    number: NumberConfig
    number_file: Path
    profiles: tuple[Profile, ...]
    scenarios: tuple[Scenario, ...]


def select(
    *,
    number_file: Path | None = None,
    profiles: Sequence[str] = (),
    scenarios: Sequence[str] = (),
    scenarios_dir: Path | None = None,
) -> Selection:
    """Load the number (default: the bundled example), the profiles (default: every
    bundled one) and the scenarios (default: every one of ``scenarios_dir`` or the
    bundled folder).  Raises InputError (one line) for anything unknown or malformed.
    """
    path = number_file or example_number_file()
    number = load_number_file(path)
    names = list(profiles) or list_profiles()
    loaded = tuple(load_profile(name) for name in dict.fromkeys(names))
    known = set(list_profiles()) | {p.name for p in loaded}
    chosen = load_scenarios(scenarios_dir, names=list(scenarios), known_profiles=known)
    return Selection(number, path, loaded, tuple(chosen))


def write_reports(results: RunResults, out_dir: Path, *, secrets: Sequence[str]) -> Path:
    """Write the run's reports into ``out_dir``; returns the ``results.json`` path.

    Uses :func:`harness.report.render.render_all` when the report package is there,
    else writes ``results.json`` alone (never a password: ``secrets`` are scrubbed).
    """
    _relative_pcaps(results, out_dir)
    if importlib.util.find_spec("harness.report.render") is not None:
        from harness.report.render import render_all  # noqa: PLC0415  # optional package

        return render_all(results, out_dir, secrets=secrets).results_json
    from harness.report.redact import scrub_data  # noqa: PLC0415

    clean = RunResults.from_dict(scrub_data(results.to_dict(), secrets))
    return clean.write(out_dir / "results.json")


def _relative_pcaps(results: RunResults, out_dir: Path) -> None:
    """Pcap paths relative to the reports' folder, so the HTML links keep working
    when the folder is moved or archived as a CI artefact."""
    base = out_dir.resolve()
    for record in results.records:
        if record.pcap and Path(record.pcap).is_absolute():
            try:
                record.pcap = str(Path(record.pcap).resolve().relative_to(base))
            except ValueError:
                continue  # a capture outside the reports' folder keeps its path


def setup_failed(results: RunResults) -> bool:
    """Whether a profile's peers could not be started (a set-up failure, exit 2)."""
    return any(
        r.verdict is Verdict.ERROR and r.reason.startswith(PEERS_DID_NOT_START)
        for r in results.records
    )


def exit_code(results: RunResults) -> int:
    """0 every record passed (or was skipped), 2 a set-up failure, 1 otherwise."""
    if setup_failed(results):
        return 2
    return 0 if results.ok else 1
