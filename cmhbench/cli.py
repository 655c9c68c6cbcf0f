"""The `cmhbench` command line: a thin layer over the library.

Every command is a few lines over a library function. Errors a user can cause arrive as
`CmhbenchError` and are printed on one line, without a traceback, with exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cmhbench.errors import CmhbenchError
from cmhbench.hparams import parse_assignment

console = Console()
err_console = Console(stderr=True)


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


@cli.command()
@click.option("--method", "-m", required=True, help="Method name (see `cmhbench methods`).")
@click.option("--dataset", "-d", required=True, help="Dataset name (see `cmhbench datasets`).")
@click.option("--bits", "-b", help="Code lengths, comma-separated (default: the protocol's).")
@click.option("--seeds", "-s", help="Seeds, comma-separated (default: the protocol's).")
@click.option("--epochs", type=int, help="Override the method's published epoch count (every stage).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True, help="auto (bf16 on CUDA), bf16 or fp32.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a hyper-parameter.")
@click.option("--preset", help="A named hyper-parameter preset of the method; 'published' forces the "
              "published defaults where the protocol would apply a preset.")
@click.option("--dataset-opt", "dataset_opts", multiple=True, metavar="KEY=VALUE",
              help="Dataset option (toy: size, image_size, vocabulary, seed).")
@click.option("--image-encoder", help="Override the image encoder (see `cmhbench encoders`).")
@click.option("--image-weights", help="none, imagenet or a path to a state-dict file.")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(),
              help="Folder for result files.")
@click.option("--force", is_flag=True, help="Run again even when the result file exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def run(method, dataset, bits, seeds, epochs, device, precision, settings, preset, dataset_opts,
        image_encoder, image_weights, results_dir, force, quiet) -> None:
    """Train METHOD on DATASET, score it, and write one result file per (bits, seed)."""
    from cmhbench.plugins.registry import get_registry
    from cmhbench.report import print_outcome
    from cmhbench.runner import RunRequest, run as run_one

    registry = get_registry()
    protocol = registry.dataset(dataset).protocol
    registry.method(method)  # fail fast on an unknown name, before any work
    hparams = _assignments("--set", settings)
    options = _assignments("--dataset-opt", dataset_opts)
    for b in _int_list("--bits", bits) or list(protocol.bits):
        for seed in _int_list("--seeds", seeds) or list(protocol.seeds):
            outcome = run_one(RunRequest(
                method=method, dataset=dataset, bits=b, seed=seed, epochs=epochs, device=device,
                precision=precision, hparams=hparams, preset=preset, dataset_options=options,
                image_encoder=image_encoder, image_weights=image_weights, results_dir=results_dir,
                force=force, quiet=quiet), registry)
            print_outcome(console, outcome)


@cli.command()
def methods() -> None:
    """List the registered hashing methods."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    table = Table("name", "description", "citation", "origin")
    for name in registry.names("method"):
        spec = registry.method(name)
        table.add_row(name, spec.description, str(spec.citation), registry.origin("method", name))
    console.print(table)


@cli.command()
def datasets() -> None:
    """List the registered datasets and their protocols."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    table = Table("name", "description", "protocol", "bits", "origin")
    for name in registry.names("dataset"):
        spec = registry.dataset(name)
        p = spec.protocol
        table.add_row(name, spec.description, f"{p.name} v{p.version}", ",".join(map(str, p.bits)),
                      registry.origin("dataset", name))
    console.print(table)


@cli.command()
def encoders() -> None:
    """List the registered image and text encoders."""
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    table = Table("name", "modality", "input", "description", "origin")
    for name in registry.names("encoder"):
        spec = registry.encoder(name)
        table.add_row(name, spec.modality, "/".join(spec.accepts), spec.description, registry.origin("encoder", name))
    console.print(table)


@cli.command()
def plugins() -> None:
    """List loaded plugins, what each provides, and broken ones with their error."""
    from cmhbench.plugins.registry import DISABLE_ENV, get_registry, plugins_disabled

    registry = get_registry()
    table = Table("plugin", "origin", "module", "status", "provides")
    for info in registry.plugins:
        status = f"[red]broken: {info.error}[/red]" if info.error else "[green]ok[/green]"
        table.add_row(info.name, info.origin, info.module, status, ", ".join(info.provides))
    console.print(table)
    if plugins_disabled():
        console.print(f"third-party plugins are disabled ({DISABLE_ENV} is set)")


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
def data_list() -> None:
    """Every dataset and whether it is prepared."""
    from cmhbench.data.prepare import prepared_path
    from cmhbench.plugins.registry import get_registry

    registry = get_registry()
    table = Table("name", "title", "prepared")
    for name in registry.names("dataset"):
        spec = registry.dataset(name)
        if spec.profile is None:
            table.add_row(name, spec.description, "generated on use")
            continue
        path = prepared_path(name)
        table.add_row(name, spec.profile.title, str(path) if path.exists() else "no")
    console.print(table)


@data.command("info")
@click.argument("name")
def data_info(name: str) -> None:
    """Where to get NAME, which files it accepts, its protocol and its prepared state."""
    from cmhbench.data.prepare import prepared_path

    spec = _dataset_with_profile(name)
    profile = spec.profile
    console.print(f"[bold]{profile.title}[/bold]  ({spec.citation})")
    console.print(f"get it: {profile.where_to_get}")
    console.print(f"accepts: {profile.accepts}")
    console.print(f"protocol {spec.protocol.name} v{spec.protocol.version}: {profile.query} queries, "
                  f"{profile.train} training items, bits {','.join(map(str, spec.protocol.bits))}")
    path = prepared_path(name)
    console.print(f"prepared: {path}" if path.exists() else
                  f"not prepared: cmhbench data prepare {name} --source PATH [--source PATH ...]")


@data.command("prepare")
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, type=click.Path(),
              help="A source file or folder (repeatable).")
@click.option("--orientation", default="auto", show_default=True,
              help="auto, items-first or items-last: which array axis indexes items, when ambiguous.")
def data_prepare(name: str, sources: tuple[str, ...], orientation: str) -> None:
    """Convert your files of dataset NAME into the canonical HDF5 file in the cache."""
    from cmhbench.data.prepare import prepare

    spec = _dataset_with_profile(name)
    report = prepare(spec.profile, sources, orientation=orientation)
    console.print(f"prepared {name}: {report.items} items ({report.layout} layout), "
                  f"{report.dropped_unlabeled} items without labels dropped")
    console.print(f"splits {report.split_sizes} ({report.split_source})")
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"-> {report.path}")


@data.command("verify")
@click.argument("name")
@click.option("--source", "sources", multiple=True, type=click.Path(), help="Source files to check (default: the recorded paths).")
def data_verify(name: str, sources: tuple[str, ...]) -> None:
    """Validate the prepared file and check its source files' sha256."""
    from cmhbench.data.prepare import verify

    _dataset_with_profile(name)
    report = verify(name, sources)
    for line in report.lines:
        console.print(line, highlight=False, soft_wrap=True)
    if not report.ok:
        raise CmhbenchError(f"verification of {name} failed: a source file changed since it was prepared")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except CmhbenchError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
