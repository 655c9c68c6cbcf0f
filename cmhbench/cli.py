"""The `cmhbench` command line: a thin layer over the library.

Every command is a few lines over a library function. Errors a user can cause arrive as
`CmhbenchError` and are printed on one line, without a traceback, with exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cmhbench.errors import CmhbenchError
from cmhbench.hparams import parse_assignment
from cmhbench.textsafe import cell, safe


def _console(stderr: bool) -> Console:
    # piped or redirected output is for grep and scripts: no width limit, so that no name is folded
    # or cut; a terminal gets its own width, and long cells wrap
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 10_000)


console = _console(stderr=False)
err_console = _console(stderr=True)

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")


def _table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells wrap instead of being cut with an ellipsis."""
    table = Table(title=safe(title) if title else None, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _add_row(table: Table, *values) -> None:
    """Cells are plain text (or rich Text): never parsed as markup, control characters removed."""
    table.add_row(*(v if not isinstance(v, str) else cell(v) for v in values))


def _print_json(value) -> None:
    import json

    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _print_rows(rows: list[dict], as_json: bool, title: str | None = None) -> None:
    """A list of records as JSON, or as a table whose columns are the records' keys."""
    if as_json:
        _print_json(rows)
        return
    table = _table(*(rows[0] if rows else ()), title=title)
    for row in rows:
        _add_row(table, *(str(v) for v in row.values()))
    console.print(table)


def _int_list(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise CmhbenchError(f"{option} {text!r}: expected comma-separated integers, e.g. {option} 16,32,64") from None
    if not values:
        raise CmhbenchError(f"{option} {text!r}: expected at least one integer")
    return values


def _assignments(option: str, items: tuple[str, ...]) -> dict[str, str]:
    return dict(parse_assignment(item, option) for item in items)


@click.group()
@click.version_option(package_name="cmhbench")
def cli() -> None:
    """cmhbench: a benchmark suite for cross-modal (image-text) hashing."""


def run_options(command):
    """The options `run` and `sweep` share (one list, so that they cannot drift). Defaults are
    applied where they are read: a sweep file's values stand unless an option is given."""
    options = [
        click.option("--bits", "-b", help="Code lengths, comma-separated (default: the protocol's)."),
        click.option("--seeds", "-s", help="Seeds, comma-separated (default: the protocol's)."),
        click.option("--epochs", type=int, help="Epoch budget: the method's longest published stage runs N epochs "
                     "and every other stage in proportion, at least one (default: the protocol's budget, else the "
                     "published schedule)."),
        click.option("--preset", help="A named hyper-parameter preset of the method; 'published' forces the "
                     "published defaults where the protocol would apply a preset."),
        click.option("--dataset-opt", "dataset_opts", multiple=True, metavar="KEY=VALUE",
                     help="Dataset option (toy: size, image_size, vocabulary, seed)."),
        click.option("--device", help="auto (default: CUDA when present, else the CPU), cpu, cuda or cuda:N."),
        click.option("--precision", help="auto (default: fp32 on the CPU, the method's own choice on CUDA), "
                     "bf16 or fp32."),
        click.option("--directions", help="Directions to score, comma-separated: i2t, t2i, i2i (image->image), "
                     "t2t (default: i2t,t2i)."),
        click.option("--results", "results_dir", type=click.Path(), help="Folder for result files (default: results)."),
        click.option("--threads", type=click.IntRange(min=1), help="CPU threads per run for training and scoring "
                     "(default: torch's, every core this process may use; a sweep's workers share the cores); on "
                     "a shared machine, the cores you were allotted."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.option("--method", "-m", required=True, help="Method name (see `cmhbench methods`).")
@click.option("--dataset", "-d", required=True, help="Dataset name (see `cmhbench datasets`).")
@run_options
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a hyper-parameter.")
@click.option("--image-encoder", help="Override the image encoder (see `cmhbench encoders`).")
@click.option("--image-weights", help="none, imagenet, openai (CLIP), toy (toy-cnn, clip-tiny) or a path to a "
              "weights file.")
@click.option("--force", is_flag=True, help="Run again even when the result file exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--log-losses", is_flag=True, help="Print every epoch's losses as a line.")
def run(method, dataset, bits, seeds, epochs, preset, dataset_opts, device, precision, directions, results_dir,
        threads, settings, image_encoder, image_weights, force, quiet, log_losses) -> None:
    """Train METHOD on DATASET, score it, and write one result file per (bits, seed)."""
    from cmhbench.data.prepare import open_prepared, prepared_path
    from cmhbench.plugins.registry import get_registry
    from cmhbench.request import RunRequest, check_request

    # everything a user can get wrong is checked before torch is imported (seconds on a loaded machine)
    registry = get_registry()
    protocol = registry.dataset(dataset).protocol
    options = _assignments("--dataset-opt", dataset_opts)
    requests = [check_request(RunRequest(
        method=method, dataset=dataset, bits=b, seed=seed, epochs=epochs, device=device or "auto",
        precision=precision or "auto", hparams=_assignments("--set", settings), preset=preset,
        dataset_options=options, image_encoder=image_encoder, image_weights=image_weights,
        results_dir=results_dir or "results", force=force, quiet=quiet, log_losses=log_losses,
        directions=tuple(d.strip() for d in (directions or "i2t,t2i").split(","))), registry)
        for b in _int_list("--bits", bits) or list(protocol.bits)
        for seed in _int_list("--seeds", seeds) or list(protocol.seeds)]
    if registry.dataset(dataset).profile is not None and not prepared_path(dataset).exists():
        open_prepared(dataset)  # raises the error that names the prepare command

    import torch

    from cmhbench.report import print_outcome
    from cmhbench.runner import run as run_one

    if threads:
        torch.set_num_threads(threads)  # recorded in each result's environment.threads
    for request in requests:
        outcome = run_one(request, registry, on_wait=lambda message: err_console.print(safe(message)))
        print_outcome(console, outcome)


@cli.command()
@JSON_OPTION
def methods(as_json: bool) -> None:
    """List the registered hashing methods."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    specs = [registry.method(name) for name in registry.names("method")]
    rows = [{"name": spec.name, "description": spec.description, "citation": str(spec.citation),
             "origin": registry.origin("method", spec.name)} for spec in specs]
    _print_rows(rows, as_json)


@cli.command()
@JSON_OPTION
def datasets(as_json: bool) -> None:
    """List the registered datasets and their protocols."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    rows = []
    for name in registry.names("dataset"):
        spec = registry.dataset(name)
        p = spec.protocol
        rows.append({"name": name, "description": spec.description, "protocol": f"{p.name} v{p.version}",
                     "bits": ",".join(map(str, p.bits)), "citation": str(spec.citation or ""),
                     "origin": registry.origin("dataset", name)})
    _print_rows(rows, as_json)


@cli.command()
@JSON_OPTION
def encoders(as_json: bool) -> None:
    """List the registered image and text encoders."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    rows = []
    for name in registry.names("encoder"):
        spec = registry.encoder(name)
        rows.append({"name": name, "modality": spec.modality, "input": "/".join(spec.accepts),
                     "description": spec.description, "citation": str(spec.citation or ""),
                     "origin": registry.origin("encoder", name)})
    _print_rows(rows, as_json)


@cli.command()
@JSON_OPTION
def plugins(as_json: bool) -> None:
    """List loaded plugins, what each provides, and broken ones with their error."""
    from cmhbench.plugins.registry import DISABLE_ENV, get_registry, plugins_disabled

    registry = get_registry()
    if as_json:
        _print_json({"third_party_disabled": plugins_disabled(), "plugins": [
            {"plugin": info.name, "origin": info.origin, "module": info.module, "status": "broken" if info.error else "ok",
             "error": info.error, "provides": list(info.provides)} for info in registry.plugins]})
        return
    table = _table("plugin", "origin", "module", "status", "provides")
    for info in registry.plugins:
        status = cell(f"broken: {info.error}", "red") if info.error else cell("ok", "green")
        _add_row(table, info.name, info.origin, info.module, status, ", ".join(info.provides))
    console.print(table)
    if plugins_disabled():
        console.print(f"third-party plugins are disabled ({DISABLE_ENV} is set)")


@cli.command("new-method")
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(path_type=Path),
              help="Folder in which to create cmhbench-NAME/.")
def new_method(name: str, parent: Path) -> None:
    """Create a ready-to-install plugin package for a new method NAME (with a conformance test)."""
    from cmhbench.scaffold import new_method as scaffold

    root = scaffold(name, parent)
    console.print(f"created {safe(root)}: pip install -e {safe(root)} && cmhbench run --method {safe(name)} "
                  "--dataset toy")


@cli.command()
@click.argument("codes_file", type=click.Path(path_type=Path))
@click.option("--directions", default=None,
              help="Comma-separated directions present in the file (default: all it holds).")
@click.option("--map-at", help="K values for mAP@K, comma-separated (default 50,100,500,1000,5000).")
@click.option("--device", default="auto", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the metrics as JSON here.")
def evaluate(codes_file, directions, map_at, device, output) -> None:
    """Score codes produced anywhere (an .npz or HDF5 file; layout in the README)."""
    from cmhbench.evaluation.files import evaluate_file
    from cmhbench.fsutil import write_json_atomic
    from cmhbench.report import print_metrics
    from cmhbench.train.context import resolve_device

    wanted = [d.strip() for d in directions.split(",")] if directions else None
    metrics = evaluate_file(codes_file, directions=wanted, map_at=_int_list("--map-at", map_at),
                            device=resolve_device(device))
    print_metrics(console, metrics, title=str(codes_file))
    if output:
        write_json_atomic(output, metrics)


@cli.command("retrieval-bench")
@click.option("--items", default="10000,100000,1000000", show_default=True,
              help="Synthetic database sizes, comma-separated (10000000 takes minutes and ~2 GB).")
@click.option("--bits", default="16,32,64,128", show_default=True, help="Code lengths, comma-separated.")
@click.option("--queries", default=100, show_default=True, help="Queries per database, timed one at a time.")
@click.option("--k", default=100, show_default=True, help="Neighbours per query (recall is of the top k).")
@click.option("--indexes", default=",".join(("cmhbench-exhaustive", "faiss-flat", "faiss-hash", "faiss-multihash")),
              show_default=True, help="Which to time, comma-separated.")
@click.option("--codes", "learned", multiple=True, type=click.Path(path_type=Path),
              help="A result file (or its .codes.npz) whose learned codes to time too; repeatable.")
@click.option("--synthetic/--no-synthetic", default=True, show_default=True, help="Time the synthetic databases.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the measurements as JSON here "
              "(rewritten after each, so an interrupted run keeps what it measured; the leaderboard reads it).")
def retrieval_bench(items, bits, queries, k, indexes, learned, synthetic, out) -> None:
    """Time hash lookup and Hamming ranking: our exhaustive search against faiss's binary indexes
    (latency, memory per item, build time, recall of the top k)."""
    from cmhbench.fsutil import write_json_atomic
    from cmhbench.retrieval.bench import INDEXES, learned as learned_codes, synthetic_grid
    from cmhbench.retrieval.report import bench_record, print_measurements

    chosen = tuple(name.strip() for name in indexes.split(",") if name.strip())
    unknown = [name for name in chosen if name not in INDEXES]
    if unknown or not chosen:
        raise CmhbenchError(f"--indexes {indexes}: expected some of {', '.join(INDEXES)}")
    if queries <= 0 or k <= 0:
        raise CmhbenchError(f"--queries {queries} and --k {k} must be positive")
    measured = []
    sources = [learned_codes(path, k, chosen) for path in learned]
    if synthetic:
        sources.insert(0, synthetic_grid(_int_list("--items", items) or [], _int_list("--bits", bits) or [],
                                         queries, k, chosen))
    for source in sources:
        for measurement in source:
            measured.append(measurement)
            console.print(f"{measurement.codes} {measurement.items:,} items, {measurement.bits} bits, "
                          f"{measurement.index}: {measurement.latency_median_ms:.3f} ms, recall {measurement.recall:.3f}")
            if out:
                write_json_atomic(out, bench_record(measured))
    print_measurements(console, measured)


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--device", default="cpu", show_default=True, help="Where to score (cpu, cuda, cuda:N).")
def rescore(results, device) -> None:
    """Re-score the stored codes of RESULTS (files or folders) under the current evaluator, rewriting
    each result atomically; results without codes are skipped, saying so."""
    from cmhbench.results.rescore import rescore as rescore_results

    outcomes = rescore_results(results, device=device)
    for outcome in outcomes:
        detail = f": {safe(outcome.detail)}" if outcome.detail else ""
        style = "yellow" if outcome.status == "skipped" else "green"
        console.print(f"[{style}]{outcome.status}[/{style}] {safe(outcome.path)}{detail}", soft_wrap=True)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("rescored", "unchanged", "skipped")}
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))


@cli.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--results", "results_dir", type=click.Path(path_type=Path),
              help="Where the reproduced run is written (default: a new temporary folder).")
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: as many as the result records).")
def reproduce(result, results_dir, device, threads) -> None:
    """Train RESULT's run again from its recorded definition and compare the codes with its stored
    ones (exit status 1 when they differ)."""
    from cmhbench.results.reproduce import reproduce as reproduce_run

    outcome = reproduce_run(result, results_dir, device, threads)
    grid = _table("codes", "bits agreeing")
    for part, share in outcome.bit_agreement.items():
        _add_row(grid, part, f"{share:.4%}")
    console.print(grid)
    console.print("mAP reproduced − recorded: " + ", ".join(f"{d} {v:+.4f}" for d, v in outcome.map_difference.items()))
    if outcome.identical:
        console.print(f"[green]identical codes[/green] (bit for bit) -> {safe(outcome.result_path)}")
        return
    why = ("in the same environment: a mismatch the environment does not explain (another method or data?)"
           if outcome.same_environment else "in another environment (CPU kernels, threads or versions differ)")
    raise CmhbenchError(f"the reproduced codes differ from the stored ones {why}; reproduced run: {outcome.result_path}")


@cli.command()
@click.argument("codes_file", type=click.Path(path_type=Path))
@click.option("--dataset", "-d", required=True, help="The dataset the codes are of (see `cmhbench datasets`).")
@click.option("--name", required=True, help="What the board calls these codes, e.g. dchmt-official.")
@click.option("--paper", help="The paper's address (http or https).")
@click.option("--code-url", help="The code that made the codes (http or https).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which seed of the outside runs this is.")
@click.option("--dataset-opt", "dataset_opts", multiple=True, metavar="KEY=VALUE", help="A dataset option.")
@click.option("--directions", help="Directions to score, comma-separated (default: i2t,t2i where the codes allow).")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path())
@click.option("--force", is_flag=True, help="Replace codes submitted before under this name and seed.")
def submit(codes_file, dataset, name, paper, code_url, seed, dataset_opts, directions, results_dir, force) -> None:
    """Turn codes produced outside cmhbench (CODES_FILE: packed codes and item ids of the query and
    retrieval splits, layout in the README) into a result scored by the same evaluator."""
    from cmhbench.report import print_metrics
    from cmhbench.results.submit import submit as submit_codes

    path, result = submit_codes(codes_file, dataset, name, paper=paper, code_url=code_url, seed=seed,
                                dataset_options=_assignments("--dataset-opt", dataset_opts), results_dir=results_dir,
                                directions=[d.strip() for d in directions.split(",")] if directions else None,
                                force=force)
    print_metrics(console, result.metrics, title=f"{name} (outside codes) on {dataset}")
    console.print(f"-> {safe(path)}")


@cli.command()
@click.argument("sweep_file", required=False, type=click.Path(path_type=Path))
@click.option("--methods", help="Methods, comma-separated.")
@click.option("--datasets", help="Datasets, comma-separated.")
@run_options
@click.option("--name", help="Name of the sweep (default: a hash of its jobs).")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "local-gpus", "slurm"]))
@click.option("--workers", type=click.IntRange(min=1), help="local-gpus: number of workers (default: one per visible GPU).")
@click.option("--partition", help="slurm: partition.")
@click.option("--time", "time_min", type=int, default=24 * 60, show_default=True, help="slurm: minutes per job.")
@click.option("--gpus-per-job", type=int,
              help="slurm: GPUs per job (default: 1 where the partition has GPUs, else 0).")
@click.option("--cpus-per-job", type=int, help="slurm: CPUs per job.")
@click.option("--mem-gb", type=float, help="slurm: memory per job.")
@click.option("--max-parallel", type=int, default=16, show_default=True,
              help="slurm: at most this many array jobs at once.")
@click.option("--no-wait", is_flag=True, help="slurm: return after submitting.")
def sweep(sweep_file, methods, datasets, bits, seeds, epochs, preset, dataset_opts, device, precision, directions,
          results_dir, threads, name, executor, workers, partition, time_min, gpus_per_job, cpus_per_job, mem_gb, max_parallel,
          no_wait) -> None:
    """Run a grid of runs (from options or a YAML/TOML SWEEP_FILE; options override the file).

    Jobs whose result exists are skipped; interrupted ones resume from their last checkpoint."""
    from cmhbench.sweep.executors import ClusterOptions
    from cmhbench.sweep.launch import launch
    from cmhbench.sweep.spec import load_sweep_file, spec_from_mapping

    content: dict = {}
    if sweep_file:
        from dataclasses import asdict

        content = {k: v for k, v in asdict(load_sweep_file(sweep_file)).items() if v is not None}
    overrides = {"methods": methods, "datasets": datasets, "bits": bits, "seeds": seeds, "epochs": epochs,
                 "preset": preset, "device": device, "precision": precision, "directions": directions, "results": results_dir,
                 "name": name}
    content.update({k: v for k, v in overrides.items() if v is not None})
    if "methods" not in content or "datasets" not in content:
        raise CmhbenchError("cmhbench sweep: give --methods and --datasets, or a sweep file")
    spec = spec_from_mapping(content, "cmhbench sweep")
    options = _assignments("--dataset-opt", dataset_opts)
    for name in spec.datasets if options else ():  # --dataset-opt applies to every dataset of the sweep
        spec.dataset_options[name] = {**spec.dataset_options.get(name, {}), **options}

    def on_plan(manifest, jobs) -> None:
        console.print(f"sweep {safe(manifest.stem)}: {len(jobs)} jobs ({safe(manifest)})")

    def on_submitted(submission) -> None:
        console.print(f"submitted slurm job array {safe(submission.job_id)}: {len(submission.run_ids)} tasks, "
                      f"logs in {safe(submission.folder)}")
        if not no_wait:
            console.print("waiting for it (Ctrl-C stops waiting, not the jobs; `cmhbench status --results "
                          f"{safe(spec.results)}` shows where each job stands)")

    def report(outcome) -> None:
        if outcome.status == "ran":
            console.print(f"[green]done[/green] {safe(outcome.label)} in {outcome.seconds:.1f}s")
        elif outcome.status == "failed":
            console.print(f"[red]failed[/red] {safe(outcome.label)}:\n{safe(outcome.error)}")
        elif outcome.status == "done":
            console.print(f"[dim]exists[/dim] {safe(outcome.label)} (result found, skipped)")
        # running-elsewhere: another process holds it; the worker waits for it at the end

    cluster = ClusterOptions(partition=partition, time_min=time_min, gpus_per_job=gpus_per_job,
                             cpus_per_job=cpus_per_job, mem_gb=mem_gb, max_parallel=max_parallel,
                             wait=not no_wait, on_submitted=on_submitted,
                             on_held=lambda tasks: console.print(
                                 f"{len(tasks)} job(s) still queued from an earlier submission "
                                 f"({safe(', '.join(tasks[:5]))}{', ...' if len(tasks) > 5 else ''}): "
                                 "waiting for them, not submitting them again"))
    summary = launch(spec, executor, workers=workers, threads=threads, cluster=cluster, on_plan=on_plan,
                     report=report)
    console.print(f"ran {summary.count('ran')}, already done {summary.count('done', 'done-elsewhere')}, "
                  f"submitted {summary.count('submitted')}, failed {summary.count('failed')}")
    if summary.failed:
        raise CmhbenchError(f"{len(summary.failed)} job(s) failed; `cmhbench status {summary.manifest.stem} "
                            f"--results {spec.results}` shows their errors")


@cli.command()
@click.argument("sweep_name", required=False)
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path())
@click.option("--errors/--no-errors", default=True, help="Show the last lines of failed jobs' errors.")
@JSON_OPTION
@click.option("--run", "run_id", metavar="RUN_ID", help="One run's progress (its run_id or first digits).")
def status(sweep_name, results_dir, errors, as_json, run_id) -> None:
    """Done / running / failed / interrupted / pending jobs of the sweeps in a results folder, or
    where one run stands (--run RUN_ID)."""
    from cmhbench.sweep.manifest import find_manifests, read_manifest
    from cmhbench.sweep.status import counts, slurm_queue, sweep_status

    if not Path(results_dir).is_dir():
        raise CmhbenchError(f"results folder {results_dir} does not exist (give the sweep's --results folder)")
    if run_id:
        _print_run_status(results_dir, run_id, as_json)
        return
    manifests = find_manifests(results_dir, sweep_name)
    if not manifests:
        raise CmhbenchError(f"no sweeps recorded in {results_dir} (run `cmhbench sweep` first)")
    reports = []
    for path in manifests:
        content, jobs = read_manifest(path)
        statuses = sweep_status(jobs, slurm_queue(results_dir, path.stem))
        reports.append((content, statuses))
    if as_json:
        _print_json([{"sweep": content["name"], "counts": counts(statuses),
                      "jobs": [{"job": s.job.label, "state": s.state, "detail": s.detail, "error": s.error}
                               for s in statuses]} for content, statuses in reports])
        return
    colours = {"done": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "pending": "white"}
    for content, statuses in reports:
        table = _table("job", "state", "detail", title=f"sweep {content['name']}: " +
                       ", ".join(f"{n} {state}" for state, n in counts(statuses).items()))
        for s in statuses:
            _add_row(table, s.job.label, cell(s.state, colours[s.state]), s.detail)
        console.print(table)
        if errors:
            for s in statuses:
                if s.state == "failed" and s.error:
                    console.print(f"[red]{safe(s.job.label)}[/red] failed:\n{safe(s.error)}")


def _print_run_status(results_dir: str, run_id: str, as_json: bool) -> None:
    from dataclasses import asdict

    from cmhbench.results.run_status import run_status

    status = run_status(results_dir, run_id)
    if as_json:
        _print_json({**asdict(status), "result": str(status.result) if status.result else None})
        return
    console.print(f"run {safe(status.run_id)}: {status.state}"
                  + (f" ({safe(status.result)})" if status.result else "")
                  + (f", {'written' if status.state == 'done' else 'last checkpoint'} {safe(status.saved_utc)}"
                     if status.saved_utc else ""))
    for stage, count in status.stages.items():
        console.print(f"  {safe(stage)}: {count['run']} of {count['planned']} epochs")
    if status.last_log:
        log = status.last_log
        values = " ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}"
                          for k, v in log.items() if k not in ("stage", "epoch"))
        epoch = f" epoch {log['epoch'] + 1}" if isinstance(log.get("epoch"), int) else ""
        console.print(f"  last logged: {safe(log.get('stage', ''))}{epoch}: {safe(values)}")


@cli.group()
def leaderboard() -> None:
    """Build, show and publish the leaderboard from result files."""


RETRIEVAL_OPTION = click.option("--retrieval", multiple=True, type=click.Path(path_type=Path),
                                help="A `cmhbench retrieval-bench --out` file for the retrieval-cost page; repeatable.")


def _print_rejections(report) -> None:
    for path, reason in report.rejected:
        err_console.print(f"[yellow]rejected[/yellow] {safe(path)}: {safe(reason)}", soft_wrap=True)


@leaderboard.command("build")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for README.md and the site.")
@click.option("--title", default="cmhbench leaderboard", show_default=True)
@click.option("--note", help="A note shown on the index (e.g. the compute budget of these runs).")
@click.option("--strict", is_flag=True, help="Fail when any result file is rejected (unverified ones included).")
@RETRIEVAL_OPTION
def leaderboard_build(results, out, title, note, strict, retrieval) -> None:
    """Validate and aggregate RESULTS (files or folders) into README.md and an HTML site in --out."""
    from cmhbench.leaderboard.site import build_site

    report = build_site(results, out, title=title, note=note, strict=strict, retrieval=retrieval)
    _print_rejections(report.load)
    console.print(f"{len(report.load.entries)} runs in {len(report.tables)} table(s), "
                  f"{len(report.load.rejected)} rejected, {report.load.merged} duplicates merged -> {safe(out)}")


@leaderboard.command("show")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@JSON_OPTION
@click.option("--strict", is_flag=True, help="Refuse results without stored codes (unverified).")
def leaderboard_show(results, as_json, strict) -> None:
    """Print the leaderboard tables of RESULTS in the terminal, re-derived from their stored codes."""
    from cmhbench.leaderboard.aggregate import build_tables
    from cmhbench.leaderboard.load import load_results

    report = load_results(results, strict=strict)
    _print_rejections(report)
    tables = build_tables(report.entries)
    if as_json:
        _print_json([{"title": table.title, "rows": [
            {"method": row.label, "cells": {f"{b} {d}": {"text": c.text, "best": c.best}
                                            for (b, d), c in zip(table.columns, table.cells(row), strict=True)}}
            for row in table.rows],
            "chance": {f"{b} {d}": value for (b, d), value in zip(table.columns, table.chance(), strict=True)}} for table in tables])
        return
    for table in tables:
        # names come from result files: plain-text cells, never read as rich markup
        grid = _table("method (image / text encoder)", *(f"{b}b {d}" for b, d in table.columns), title=table.title)
        for row in table.rows:
            _add_row(grid, row.label, *(cell(c.text, "bold green" if c.best else None) for c in table.cells(row)))
        _add_row(grid, cell("chance (random ranking)", "dim"), *(cell(v, "dim") for v in table.chance()))
        console.print(grid)


@leaderboard.command("publish")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--to", "repo", required=True, help="Git repository: a local path or a remote URL.")
@click.option("--branch", default="gh-pages", show_default=True)
@click.option("--title", default="cmhbench leaderboard", show_default=True)
@click.option("--note", help="A note shown on the index.")
@RETRIEVAL_OPTION
def leaderboard_publish(results, repo, branch, title, note, retrieval) -> None:
    """Build the site from RESULTS, commit it on BRANCH of the repository --to, and push."""
    import tempfile

    from cmhbench.leaderboard.publish import publish_site
    from cmhbench.leaderboard.site import build_site

    with tempfile.TemporaryDirectory(prefix="cmhbench-site-") as tmp:
        built = build_site(results, Path(tmp) / "site", title=title, note=note, retrieval=retrieval)
        _print_rejections(built.load)
        summary = f"{len(built.load.entries)} runs in {len(built.tables)} table(s)"
        outcome = publish_site(built.out, repo, branch, summary)
    console.print(f"{safe(outcome.message.splitlines()[0])} -> {safe(repo)} {safe(branch)}"
                  + (f" ({outcome.commit[:12]})" if outcome.commit else ""))


@cli.group()
def data() -> None:
    """Prepare the standard datasets from your files, and check them."""


def _dataset_with_profile(name: str):
    from cmhbench.plugins.registry import get_registry

    spec = get_registry().dataset(name)
    if spec.profile is None:
        raise CmhbenchError(f"dataset {name} is generated, not prepared from files; just use --dataset {name}")
    return spec


@data.command("list")
@JSON_OPTION
def data_list(as_json: bool) -> None:
    """Every dataset and whether it is prepared."""
    from cmhbench.data.prepare import prepared_path
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    rows = []
    for name in registry.names("dataset"):
        spec = registry.dataset(name)
        if spec.profile is None:
            rows.append({"name": name, "title": spec.description, "prepared": "generated on use"})
            continue
        path = prepared_path(name)
        rows.append({"name": name, "title": spec.profile.title, "prepared": str(path) if path.exists() else "no"})
    _print_rows(rows, as_json)


@data.command("info")
@click.argument("name")
def data_info(name: str) -> None:
    """Where to get NAME, which files it accepts, its protocol and its prepared state."""
    from cmhbench.data.prepare import prepared_path
    from cmhbench.plugins.registry import get_registry

    spec = get_registry().dataset(name)
    protocol = spec.protocol
    bits = ",".join(map(str, protocol.bits))
    profile = spec.profile
    if profile is None:  # generated (toy): nothing to download or prepare
        console.print(f"[bold]{safe(name)}[/bold]: {safe(spec.description)}")
        console.print(f"protocol {safe(protocol.name)} v{protocol.version}: bits {bits}, seeds "
                      f"{','.join(map(str, protocol.seeds))}")
        console.print(f"generated on use, nothing to prepare: cmhbench run --method METHOD --dataset {safe(name)}")
        return
    console.print(f"[bold]{safe(profile.title)}[/bold]  ({safe(spec.citation)})")
    console.print(f"get it: {safe(profile.where_to_get)}")
    console.print(f"accepts: {safe(profile.accepts)}")
    console.print(f"protocol {safe(protocol.name)} v{protocol.version}: {profile.query} queries, "
                  f"{profile.train} training items, bits {bits}")
    path = prepared_path(name)
    console.print(f"prepared: {safe(path)}" if path.exists() else
                  f"not prepared: cmhbench data prepare {safe(name)} --source PATH [--source PATH ...]")


@data.command("splits")
@click.argument("name")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="An .npz file to write.")
@click.option("--dataset-opt", "dataset_opts", multiple=True, metavar="KEY=VALUE", help="A dataset option.")
@click.option("--with-arrays", is_flag=True, help="Also write the images and texts (up to 1 GiB; e.g. toy).")
def data_splits(name: str, out: Path, dataset_opts: tuple[str, ...], with_arrays: bool) -> None:
    """Write NAME's fixed splits (query_ids, retrieval_ids, train_ids: item indices) and labels, for
    code outside cmhbench that trains and encodes on the same items (see `cmhbench submit`)."""
    from cmhbench.results.submit import export_splits

    sizes = export_splits(name, out, _assignments("--dataset-opt", dataset_opts), with_arrays)
    console.print(f"{safe(name)}: " + ", ".join(f"{split} {n}" for split, n in sizes.items()) + f" items -> {safe(out)}")


@data.command("prepare")
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, type=click.Path(),
              help="A source file or folder (repeatable).")
@click.option("--orientation", default="auto", show_default=True,
              help="auto, items-first or items-last: which array axis indexes items, when ambiguous.")
def data_prepare(name: str, sources: tuple[str, ...], orientation: str) -> None:
    """Convert your files of dataset NAME into the canonical HDF5 file in the cache."""
    from cmhbench.data.prepare import prepare
    from cmhbench.progress import TrainingProgress

    spec = _dataset_with_profile(name)
    progress = TrainingProgress(f"data prepare {name}")
    with progress.running():
        report = prepare(spec.profile, sources, orientation=orientation, progress=progress)
    console.print(f"prepared {safe(name)}: {report.items} items ({safe(report.layout)} layout), "
                  f"{report.dropped_unlabeled} items without labels dropped")
    console.print(f"splits {safe(report.split_sizes)} ({safe(report.split_source)})")
    for note in report.notes:
        console.print(f"note: {safe(note)}")
    console.print(f"-> {safe(report.path)}")


@data.command("verify")
@click.argument("name")
@click.option("--source", "sources", multiple=True, type=click.Path(), help="Source files to check (default: the recorded paths).")
def data_verify(name: str, sources: tuple[str, ...]) -> None:
    """Validate the prepared file and check its source files' sha256."""
    from cmhbench.data.prepare import verify

    _dataset_with_profile(name)
    report = verify(name, sources)
    for line in report.lines:
        console.print(safe(line), soft_wrap=True)
    if not report.ok:
        raise CmhbenchError(f"verification of {name} failed: a source file changed since it was prepared")


STOPPED = "finished epochs are kept in the run's checkpoint: the same command resumes from there"


def main() -> None:
    from cmhbench import interrupts

    restore = interrupts.install()
    try:
        cli.main(standalone_mode=False)
        interrupts.raise_if_received()  # a signal swallowed where it landed still stops the command
    except CmhbenchError as exc:
        err_console.print(f"[red]error:[/red] {safe(exc)}", soft_wrap=True)
        if os.environ.get("CMHBENCH_TRACEBACK") == "1" and exc.__cause__ is not None:
            err_console.print_exception()
        _exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("aborted" + _resumable())
        _exit(130)
    except interrupts.Terminated:
        err_console.print("stopped by SIGTERM" + _resumable())
        _exit(143)
    except click.ClickException as exc:  # a malformed option or argument: a user error like any other
        err_console.print(f"[red]error:[/red] {safe(_one_line(exc))}", soft_wrap=True)
        _exit(1)
    finally:
        restore()
    _exit(0)


def _one_line(exc: click.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    context = getattr(exc, "ctx", None)
    return f"{message} (see `{context.command_path} --help`)" if context is not None else message


def _resumable() -> str:
    """What an interrupted command keeps: said for the commands that train."""
    return f" ({STOPPED})" if set(sys.argv[1:2]) & {"run", "sweep"} else ""


def _exit(code: int) -> None:
    """Exit now, even where a plugin left non-daemon threads running (they would keep the process,
    and a sweep worker waiting on it, alive after the result is written)."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
