"""`cmhbench leaderboard build`: README.md and a static HTML site from result files.

The site is plain HTML and PNG that works from the file system: an index with every table, a page
per dataset table with a table per metric and its plots, a page per table row with every run's
provenance (every number of the tables links there), a page per method, and a copy of each result
file (named by run_id). Everything that comes from a result file is escaped by Jinja2's
autoescaping; the Content-Security-Policy allows one script, the site's own sort.js (column
sorting), and no inline script, style or other origin.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jinja2

import cmhbench
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import exchange_paths, owner_tag, remove_abandoned
from cmhbench.leaderboard import run_facts
from cmhbench.leaderboard.aggregate import MAP_AT_K, METRIC_BY_KEY, PRECISION_K, Row, Table, build_tables, slug
from cmhbench.leaderboard.load import LoadReport, load_results
from cmhbench.leaderboard.markdown import leaderboard_markdown, retrieval_markdown
from cmhbench.leaderboard.plots import draw_retrieval_plots, draw_table_plots
from cmhbench.leaderboard.retrieval import RetrievalBench, load_retrieval
from cmhbench.leaderboard.reported import difference, installed_method_specs, reported_rows

DEFAULT_TITLE = "cmhbench leaderboard"


@dataclass
class BuildReport:
    out: Path
    load: LoadReport
    tables: list[Table]


def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("cmhbench.leaderboard").joinpath("templates")))
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.ChainableUndefined)
    env.globals.update(method_slug=slug, run_page=run_page, timings=run_facts.timings, memory=run_facts.memory,
                       machine=run_facts.machine,
                       rerun=run_facts.rerun_command)
    return env


def run_page(table: Table, row: Row) -> str:
    """The file name (without .html) of the page of one table row's runs."""
    return slug(f"{table.slug}/{row.key}")


def build_site(results: Iterable[str | Path], out: str | Path, *, title: str = DEFAULT_TITLE,
               note: str | None = None, strict: bool = False,
               retrieval: Iterable[str | Path] = ()) -> BuildReport:
    """Build README.md and the site into ``out`` (replaced as a whole, atomically: a failed build
    leaves the previous site untouched). ``retrieval``: `cmhbench retrieval-bench --out` files for
    the retrieval-cost page."""
    results, out = list(results), Path(out)
    check_out_folder(out, results)
    benches = load_retrieval(list(retrieval))
    report = load_results(results, strict=strict)
    if strict and report.rejected:
        raise CmhbenchError(f"{len(report.rejected)} result file(s) rejected, first: "
                            f"{report.rejected[0][0]}: {report.rejected[0][1]}")
    if not report.entries:
        raise CmhbenchError("no valid result files to build a leaderboard from" +
                            (f" ({len(report.rejected)} rejected, first: {report.rejected[0][0]}: "
                             f"{report.rejected[0][1]})" if report.rejected else ""))
    tables = build_tables(report.entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover_interrupted_swap(out)
    remove_abandoned(out.parent, out.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.{owner_tag()}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would make the published folder private
    try:
        _write_site(staging, report, tables, title, note, benches)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildReport(out, report, tables)


def _swap_in(staging: Path, out: Path) -> None:
    """Put the new site at ``out`` without a moment where ``out`` is missing (where the system can
    swap folders atomically; elsewhere the old site is moved aside first, and a build interrupted
    in between is repaired by the next one)."""
    if not out.exists():
        staging.rename(out)
    elif exchange_paths(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous site
    else:
        backup = _backup_of(out)
        shutil.rmtree(backup, ignore_errors=True)
        out.rename(backup)
        staging.rename(out)
        shutil.rmtree(backup, ignore_errors=True)


#: written into every site this command builds: only such a folder is ever replaced by a build
SITE_MARKER = ".cmhbench-site"


def check_out_folder(out: Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an --out the build would destroy: a file, a folder that is not a site built here
    (sites from before the marker are known by their .nojekyll and index.html), or one that is,
    holds or lies inside a results input."""
    target = out.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if target == source or source.is_relative_to(target) or target.is_relative_to(source):
            raise CmhbenchError(f"--out {out}: it overlaps the input {source} (building replaces the whole "
                                "folder); give a folder outside the results")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise CmhbenchError(f"--out {out}: it is not a folder; give a new folder or a site built earlier")
    if out.is_dir() and any(out.iterdir()):
        built = (out / SITE_MARKER).is_file() or ((out / ".nojekyll").is_file() and (out / "index.html").is_file())
        if not built:
            raise CmhbenchError(f"--out {out}: the folder exists and is not a site built by `cmhbench leaderboard "
                                "build` (building replaces the whole folder); give a new folder")


def _backup_of(out: Path) -> Path:
    """Where the previous site waits while the fallback swap (two renames) runs."""
    return out.with_name(f".{out.name}.old")


def _recover_interrupted_swap(out: Path) -> None:
    backup = _backup_of(out)
    if backup.exists() and not out.exists():
        backup.rename(out)
    elif backup.exists():
        shutil.rmtree(backup, ignore_errors=True)


def _write_site(root: Path, report: LoadReport, tables: list[Table], title: str, note: str | None,
                benches: list[RetrievalBench]) -> None:
    env = _environment()
    specs = {spec.name: spec for spec in installed_method_specs()}
    papers = {table.slug: reported_rows(table, specs.values()) for table in tables}

    def paper_difference(table: Table, row: Row, cell) -> str:
        """ "Δ +0.0123 vs paper (dcmh_map)" for a map cell whose method's paper reports the same column,
        our score taken under the paper's own mAP definition; or why it cannot be compared."""
        if cell.stat is None:
            return ""
        delta, definition = difference(row, papers[table.slug], cell.bits, cell.direction)
        if delta is None:
            return definition and f"vs paper: {definition}"
        return f"Δ {delta:+.4f} vs paper ({definition})"

    def links(method: str) -> dict[str, str]:
        spec = specs.get(method)
        return {"paper": spec.citation.url, "code": spec.code_url} if spec else {}

    env.globals.update(reported=lambda table: papers[table.slug], paper_difference=paper_difference, links=links)
    counts = {"entries": len(report.entries), "rejected": len(report.rejected), "merged": report.merged,
              "unverified": report.unverified}
    common = {"tables": tables, "version": cmhbench.__version__, "title": title,
              "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    markdown = leaderboard_markdown(tables, title, note, counts, papers, report.rejected) + retrieval_markdown(benches)
    (root / "README.md").write_text(markdown, encoding="utf-8")
    for name in ("style.css", "sort.js"):
        shutil.copy(resources.files("cmhbench.leaderboard").joinpath("static", name), root / name)
    (root / ".nojekyll").write_text("")  # GitHub Pages: serve the files as they are
    (root / SITE_MARKER).write_text("a site built by `cmhbench leaderboard build`; a build replaces this folder\n")

    results_dir = root / "results"
    results_dir.mkdir()
    for entry in report.entries:
        (results_dir / f"{entry.run_id}.json").write_text(json.dumps(entry.result, indent=2), encoding="utf-8")

    methods = sorted({row.method for table in tables for row in table.rows})
    page = env.get_template("index.html").render(
        **common, root="", page_title=title, note=note, counts=counts, methods=methods,
        rejected=[(str(path), reason) for path, reason in report.rejected], retrieval=bool(benches),
        map_metric=METRIC_BY_KEY["map"], map_at_k=MAP_AT_K, precision_k=PRECISION_K)
    (root / "index.html").write_text(page, encoding="utf-8")

    _write_table_pages(root, env, common, tables, title)
    if benches:
        plots = {bench.file: draw_retrieval_plots(bench, root / "plots", f"retrieval-{index}")
                 for index, bench in enumerate(benches)}
        page = env.get_template("retrieval.html").render(**common, root="", page_title=f"Retrieval cost · {title}",
                                                         benches=benches, plots=plots)
        (root / "retrieval.html").write_text(page, encoding="utf-8")
    _write_method_pages(root, env, common, tables, methods, specs, title)


def _write_table_pages(root: Path, env, common: dict, tables: list[Table], title: str) -> None:
    """A page per dataset table (with its plots) and a page per row's runs."""
    (root / "datasets").mkdir()
    for table in tables:
        plots = draw_table_plots(table, root / "plots")
        page = env.get_template("dataset.html").render(
            **common, root="../", page_title=f"{table.title} · {title}", table=table, plots=plots)
        (root / "datasets" / f"{table.slug}.html").write_text(page, encoding="utf-8")

    (root / "runs").mkdir()
    for table in tables:
        for row in table.rows:
            first = row.entries[0].result
            page = env.get_template("run.html").render(
                **common, root="../", page_title=f"{row.label} · {table.short_title} · {title}", table=table,
                row=row, bits_list=sorted({e.result["bits"] for e in row.entries}),
                plugin=run_facts.plugin(first), epochs=run_facts.epochs(row.entries),
                citation=first["method"].get("citation"))
            (root / "runs" / f"{run_page(table, row)}.html").write_text(page, encoding="utf-8")


def _write_method_pages(root: Path, env, common: dict, tables: list[Table], methods: list[str], specs: dict,
                        title: str) -> None:
    (root / "methods").mkdir()
    for method in methods:
        rows: list[tuple[Table, Row]] = [(t, r) for t in tables for r in t.rows if r.method == method]
        first = rows[0][1].entries[0].result["method"]
        spec = specs.get(method)
        page = env.get_template("method.html").render(
            **common, root="../", page_title=f"{method} · {title}", method=method, rows=rows,
            description=first.get("description"), citation=first.get("citation"),
            paper_numbers=sorted(spec.reported, key=lambda r: (r.dataset, r.source, r.direction, r.bits)) if spec else [])
        (root / "methods" / f"{slug(method)}.html").write_text(page, encoding="utf-8")
