"""Leaderboard: validation and rejection reasons, aggregation against hand-computed statistics,
protocol separation, Markdown and HTML output, hostile content, publishing to a bare repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cmhbench.leaderboard.aggregate import build_tables
from cmhbench.leaderboard.load import load_results, validate
from cmhbench.leaderboard.publish import publish_site
from cmhbench.leaderboard.site import build_site
from cmhbench.results import compute_run_id, definition_of_result
from cmhbench.runner import RunRequest, run
from conftest import run_cli
from leaderboard_fixtures import make_result, write_result


@pytest.fixture
def three_seeds(tmp_path) -> Path:
    """dcmh at 16 bits over seeds 0,1,2 with i2t mAP 0.5, 0.6, 0.7 (mean 0.6, sample std 0.1) and
    t2i 0.2, 0.2, 0.5 (mean 0.3, sample std sqrt(0.03)); ssah with one seed."""
    folder = tmp_path / "results"
    for seed, (i2t, t2i) in enumerate([(0.5, 0.2), (0.6, 0.2), (0.7, 0.5)]):
        write_result(folder, make_result("dcmh", seed=seed, i2t=i2t, t2i=t2i))
    write_result(folder, make_result("ssah", seed=0, i2t=0.65, t2i=0.25))
    return folder


def test_aggregation_matches_hand_computed_statistics(three_seeds):
    (table,) = build_tables(load_results([three_seeds]).entries)
    dcmh = next(r for r in table.rows if r.method == "dcmh")
    i2t, t2i = dcmh.cell(16, "i2t"), dcmh.cell(16, "t2i")
    assert (i2t.mean, i2t.std, i2t.n) == (pytest.approx(0.6), pytest.approx(0.1), 3)
    assert (t2i.mean, t2i.std, t2i.n) == (pytest.approx(0.3), pytest.approx(0.03 ** 0.5), 3)
    ssah = next(r for r in table.rows if r.method == "ssah")
    assert ssah.cell(16, "i2t").std is None and ssah.cell(16, "i2t").n == 1
    # ssah's 0.65 comes from one of the protocol's three seeds: it cannot be the column's best
    assert table.best(16, "i2t") == pytest.approx(0.6) and table.best(16, "t2i") == pytest.approx(0.3)


def test_a_seed_rerun_with_more_directions_counts_once(three_seeds):
    """Seed 2 again, later, with i2i scored too: a distinct run (its run_id differs) but the same
    sample, so i2t keeps n = 3 and takes the newer value; i2i has its one seed."""
    rerun = make_result("dcmh", seed=2, i2t=0.8, t2i=0.5, created="2026-11-24T00:00:00Z")
    rerun["metrics"]["i2i"] = rerun["metrics"]["i2t"] | {"map": 0.9}
    rerun["run_id"] = compute_run_id(definition_of_result(rerun))
    write_result(three_seeds, rerun)
    report = load_results([three_seeds])
    assert report.merged == 0 and not report.rejected
    (table,) = build_tables(report.entries)
    dcmh = next(r for r in table.rows if r.method == "dcmh")
    i2t = dcmh.cell(16, "i2t")
    assert (i2t.mean, i2t.n) == (pytest.approx((0.5 + 0.6 + 0.8) / 3), 3)
    assert dcmh.cell(16, "t2i").n == 3
    assert (dcmh.cell(16, "i2i").mean, dcmh.cell(16, "i2i").n) == (pytest.approx(0.9), 1)
    assert table.directions == ["i2t", "t2i", "i2i"]


def test_other_protocol_or_data_version_gets_its_own_table(three_seeds):
    write_result(three_seeds, make_result("dcmh", seed=3, i2t=0.9, protocol_version=2))
    write_result(three_seeds, make_result("dcmh", seed=4, i2t=0.1, dataset_version="2:xyz"))
    tables = build_tables(load_results([three_seeds]).entries)
    assert len(tables) == 3
    by_key = {(t.protocol_version, t.dataset_version): t for t in tables}
    assert by_key[(1, "1:abc")].rows[0].cell(16, "i2t").n == 3  # the others did not leak in
    assert by_key[(2, "1:abc")].rows[0].cell(16, "i2t").mean == pytest.approx(0.9)
    assert by_key[(1, "2:xyz")].rows[0].cell(16, "i2t").mean == pytest.approx(0.1)


def test_invalid_and_inconsistent_files_are_rejected_with_the_reason(tmp_path):
    folder = tmp_path / "results"
    good = make_result()
    write_result(folder, good, "good.json")
    write_result(folder, good, "copy-of-good.json")  # a duplicate: merged, not counted twice
    edited = make_result(hyperparameters={"lr": 0.1})
    edited["method"]["hyperparameters"]["lr"] = 10.0  # claims another configuration than it ran
    write_result(folder, edited, "edited.json")
    out_of_range = make_result(seed=7, i2t=0.5)
    out_of_range["metrics"]["i2t"]["map"] = 1.3
    write_result(folder, out_of_range, "range.json")
    missing = make_result(seed=8)
    del missing["metrics"]
    write_result(folder, missing, "missing.json")
    ragged = make_result(seed=9)
    ragged["metrics"]["t2i"]["precision_at"]["value"].pop()
    ragged["run_id"] = compute_run_id(definition_of_result(ragged))
    write_result(folder, ragged, "ragged.json")
    (folder / "broken.json").write_text("{not json")

    report = load_results([folder])
    reasons = {path.name: reason for path, reason in report.rejected}
    assert len(report.entries) == 1 and report.merged == 1
    assert "does not match the file's content" in reasons["edited.json"]
    assert "metrics/i2t/map" in reasons["range.json"] and "1.3" in reasons["range.json"]
    assert "'metrics' is a required property" in reasons["missing.json"]
    assert "precision_at: k and value differ in length" in reasons["ragged.json"]
    assert "not valid JSON" in reasons["broken.json"]


def test_a_real_run_result_is_valid_and_its_run_id_recomputes(tmp_path):
    outcome = run(RunRequest(method="ridge-codes", dataset="toy", bits=16, dataset_options={"size": 200,
                             "vocabulary": 160}, results_dir=tmp_path, quiet=True, device="cpu"))
    assert validate(outcome.result) is None
    assert compute_run_id(definition_of_result(outcome.result)) == outcome.result["run_id"]


def test_markdown_marks_the_best_per_column(three_seeds, tmp_path):
    build_site([three_seeds], tmp_path / "site")
    markdown = (tmp_path / "site" / "README.md").read_text()
    dcmh_line = next(line for line in markdown.splitlines() if line.startswith("| dcmh"))
    ssah_line = next(line for line in markdown.splitlines() if line.startswith("| ssah"))
    assert "| 0.6500 (n=1) |" in ssah_line and "| **0.6000 ± 0.1000 (n=3)** |" in dcmh_line
    assert "**0.3000 ± 0.1732 (n=3)**" in dcmh_line


HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _hostile_results(folder: Path) -> Path:
    write_result(folder, make_result(method=f'evil"{HOSTILE}', hyperparameters={"lr": HOSTILE},
                                     command=f"cmhbench run </td>{HOSTILE}", description=HOSTILE,
                                     plugin=f"plugin 'x' ({HOSTILE})", rerun=f"cmhbench run </td>{HOSTILE}"))
    write_result(folder, make_result(method="$\\alpha$ plain", dataset=f"toy{HOSTILE}", i2t=0.3))
    return folder


def test_hostile_content_is_escaped_everywhere(tmp_path):
    site = tmp_path / "site"
    build_site([_hostile_results(tmp_path / "results")], site, note=HOSTILE, title=f"board {HOSTILE}")
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        parser = _Tags()
        parser.feed(page.read_text())
        # the one script is the site's own file: nothing inline, nothing from a result
        scripts = [attrs for t, attrs in parser.tags if t == "script"]
        assert len(scripts) == 1 and scripts[0]["src"].endswith("sort.js") and "/" not in scripts[0]["src"].lstrip("./"), page
        assert "<script src" in page.read_text() and page.read_text().count("<script") == 1, page
        assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")], page
        srcs = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
        assert all("plots/" in src and src.endswith(".png") for src in srcs), (page, srcs)
        assert "&lt;script&gt;" in page.read_text() or "methods" not in page.parts
    readme = (site / "README.md").read_text()
    assert "<script" not in readme and "<img" not in readme and "&lt;script&gt;" in readme
    # every file the site wrote stays inside it (names come from slugs and run_ids, not raw strings)
    assert all(p.resolve().is_relative_to(site.resolve()) for p in site.rglob("*"))


def test_publish_commits_and_pushes_to_a_bare_repository(three_seeds, tmp_path):
    bare = tmp_path / "pages.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    site = build_site([three_seeds], tmp_path / "site").out
    first = publish_site(site, str(bare), "gh-pages")
    assert first.committed and first.message.startswith("leaderboard: ")
    files = subprocess.run(["git", "--git-dir", str(bare), "ls-tree", "-r", "--name-only", "gh-pages"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert "index.html" in files and "README.md" in files and sum(f.startswith("results/") for f in files) == 4
    added_count = int(first.message.split(":")[1].split()[0])
    assert added_count == len(files)

    write_result(three_seeds, make_result("dcmh", bits=32, seed=0, i2t=0.7))
    out = run_cli("leaderboard", "publish", str(three_seeds), "--to", str(bare))
    assert out.returncode == 0, out.stderr
    log = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%s", "gh-pages"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == 2 and "1 file(s) added" not in log[0] and "added" in log[0]
    # publishing the same site again changes nothing and commits nothing
    again = publish_site(site, str(bare), "gh-pages")
    assert not again.committed or again.message  # the index carries the build time, so it may differ


def test_cli_build_and_show(three_seeds, tmp_path):
    (three_seeds / "bad.json").write_text("[]")
    out = run_cli("leaderboard", "build", str(three_seeds), "--out", str(tmp_path / "site"))
    assert out.returncode == 0, out.stderr
    assert "rejected" in out.stderr and "bad.json" in out.stderr
    assert "4 runs in 1 table(s), 1 rejected" in out.stdout
    shown = run_cli("leaderboard", "show", str(three_seeds))
    assert "0.6000 ± 0.1000 (n=3)" in shown.stdout and "toy" in shown.stdout
    strict = run_cli("leaderboard", "build", str(three_seeds), "--out", str(tmp_path / "s2"), "--strict")
    # under --strict, results without stored codes are refused too (these synthetic ones have none)
    assert strict.returncode == 1 and "rejected" in strict.stderr and not (tmp_path / "s2").exists()


# --- in a real browser ----------------------------------------------------------------------------
def _chromium():
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        if __import__("os").environ.get("CMHBENCH_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromedriver are required (CMHBENCH_REQUIRE_BROWSER is set)")
        pytest.skip("needs Debian's chromium and chromium-driver (installed by .ci/run)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _chromium()
    yield driver
    driver.quit()


def _check_page(browser, path: Path) -> None:
    browser.get(path.resolve().as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
    assert all(loaded for _, loaded in images), images
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    assert browser.execute_script("return window.pwned === undefined && document.scripts.length === 1 "
                                  "&& document.scripts[0].src.endsWith('/sort.js') && !document.scripts[0].text")
    # at 1024 px (and on a phone) the page itself never scrolls sideways: wide tables scroll in their box
    for width in (1024, 390):
        browser.set_window_size(width, 900)
        assert browser.execute_script("return document.documentElement.scrollWidth <= "
                                      "document.documentElement.clientWidth"), (path, width)
    browser.set_window_size(1280, 900)
    return images


def _check_number_links(page: Path, html: str) -> int:
    """Every number of every results table is a link to a page that exists, to an anchor on it."""
    parser = _Tags()
    parser.feed(html)
    links = [attrs["href"] for tag, attrs in parser.tags if tag == "a" and "#bits-" in attrs.get("href", "")]
    cells = html.count("data-mean=")
    assert cells and len(links) == cells, (page, cells, len(links))
    for link in links:
        target, anchor = link.split("#")
        target_page = (page.parent / target).resolve()
        assert target_page.is_file(), link
        assert f'id="{anchor}"' in target_page.read_text(), link
    return len(links)


def test_site_in_a_real_browser(browser, three_seeds, tmp_path):
    write_result(three_seeds, make_result("dcmh", bits=32, seed=0, i2t=0.55, t2i=0.45))
    site = build_site([three_seeds], tmp_path / "site").out
    _check_page(browser, site / "index.html")
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.results tbody tr:not(.chance)')).map(tr => "
        "[tr.cells[0].innerText, Array.from(tr.querySelectorAll('td[data-mean]')).map(td => "
        "[td.dataset.bits, td.dataset.direction, parseFloat(td.dataset.mean), parseInt(td.dataset.n)])])")
    by_method = {label.split(" ")[0]: {(int(b), d): (m, n) for b, d, m, n in values} for label, values in cells}
    # the expected values, computed here from the result files themselves
    expected: dict[str, dict] = {}
    for path in three_seeds.glob("*.json"):
        r = json.loads(path.read_text())
        for direction in ("i2t", "t2i"):
            expected.setdefault(r["method"]["name"], {}).setdefault((r["bits"], direction), []).append(
                r["metrics"][direction]["map"])
    assert set(by_method) == set(expected)
    for method, cells_expected in expected.items():
        for key, values in cells_expected.items():
            mean, n = by_method[method][key]
            assert mean == pytest.approx(sum(values) / len(values), abs=1e-6) and n == len(values)

    dataset_page = next((site / "datasets").glob("*.html"))
    images = _check_page(browser, dataset_page)
    assert len(images) == 2 + 2 * 2  # mAP per code length, mAP vs time, and PR + P@K per code length
    best = browser.execute_script("return Array.from(document.querySelectorAll('td.best')).map(td => td.innerText)")
    assert "0.6000 ±0.1000 n=3" in best and "0.6500 n=1" not in best  # one seed of three is never best
    # a table per metric, and each of their numbers links to its run page
    metrics = browser.execute_script("return Array.from(document.querySelectorAll('table.results')).map(t => t.dataset.metric)")
    assert metrics == ["map", "map_tie_aware", "map_at_50", "precision_at_100", "lookup_f1"]
    assert _check_number_links(dataset_page, dataset_page.read_text()) == 5 * 6  # 2 rows x 4 columns, less 2 empty
    assert _check_number_links(site / "index.html", (site / "index.html").read_text()) == 6
    # sorting by a column's heading reorders the rows by that column's means, best first, then worst first
    order = ("return Array.from(document.querySelector('table.results').tBodies[0].rows).map(r => "
             "[r.cells[0].innerText, parseFloat(r.cells[1].dataset.mean)])")
    before = browser.execute_script(order)
    browser.find_element("css selector", "table.results thead th:nth-child(2) button").click()
    descending = browser.execute_script(order)
    browser.find_element("css selector", "table.results thead th:nth-child(2) button").click()
    ascending = browser.execute_script(order)
    assert [m for _, m in descending] == sorted((m for _, m in before), reverse=True)
    assert [m for _, m in ascending] == sorted(m for _, m in before)
    assert descending != before or ascending != before
    # the Content-Security-Policy blocks an inline script injected into the page
    assert browser.execute_script("const s = document.createElement('script'); s.text = 'window.injected = 1'; "
                                  "document.body.appendChild(s); return window.injected === undefined")
    blocked = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert blocked, "the browser did not report the blocked inline script"
    method_page = next((site / "methods").glob("dcmh-*.html"))
    _check_page(browser, method_page)
    (run_link,) = browser.execute_script("return Array.from(document.querySelectorAll('a[href*=\"runs/\"]')).map(a => a.href)")
    run_page = Path(run_link.removeprefix("file://"))
    _check_page(browser, run_page)
    text = run_page.read_text()
    assert "cmhbench run --method" in text and "train / encode / evaluate" in text and "epochs run" in text
    links = browser.execute_script("return Array.from(document.querySelectorAll('a.result-link')).map(a => a.href)")
    assert len(links) == 4 and all(Path(link.removeprefix("file://")).is_file() for link in links)


def test_hostile_site_in_a_real_browser(browser, tmp_path):
    site = build_site([_hostile_results(tmp_path / "results")], tmp_path / "site", note=HOSTILE).out
    _check_page(browser, site / "index.html")
    assert HOSTILE in browser.find_element("css selector", "p.note").text  # shown as text, not run
    for page in (site / "methods").glob("*.html"):
        _check_page(browser, page)


def test_an_edited_metric_is_rejected(tmp_path):
    """The run_id covers the definition; content_sha256 covers what was measured."""
    honest = make_result(i2t=0.41)
    edited = json.loads(json.dumps(honest))
    edited["metrics"]["i2t"]["map"] = 0.91
    write_result(tmp_path / "a", honest)
    write_result(tmp_path / "b", edited, stamp=False)
    report = load_results([tmp_path / "b"])
    assert not report.entries and "content_sha256 does not match" in report.rejected[0][1]
    unstamped = {k: v for k, v in honest.items() if k != "content_sha256"}
    write_result(tmp_path / "c", unstamped, stamp=False)
    assert "no content_sha256" in load_results([tmp_path / "c"]).rejected[0][1]


def test_non_finite_metrics_are_rejected(tmp_path):
    result = make_result()
    result["metrics"]["t2i"]["map_at"]["50"] = float("nan")
    write_result(tmp_path, result)  # a valid digest: the NaN itself is the reason
    (path, reason), = load_results([tmp_path]).rejected
    assert reason == "metrics/t2i/map_at/50: not a finite number"


def test_one_run_id_with_two_measurements_is_a_conflict(tmp_path):
    first = make_result(i2t=0.41, created="2026-11-23T00:00:00Z")
    second = json.loads(json.dumps(first))
    second["metrics"]["i2t"]["map"] = 0.55
    second["created_utc"] = "2026-11-24T00:00:00Z"  # newer, but not believed over the other
    write_result(tmp_path / "a", first)
    write_result(tmp_path / "b", second)
    report = load_results([tmp_path])
    assert not report.entries
    assert len(report.rejected) == 2 and all("conflict" in reason for _, reason in report.rejected)


def test_every_table_has_a_chance_row_and_names_its_dataset_options(tmp_path):
    results = tmp_path / "results"
    write_result(results, make_result(dataset_version="1:small", dataset_options={"size": 400}))
    write_result(results, make_result(method="ssah"))
    build_site([results], tmp_path / "site")
    markdown = (tmp_path / "site" / "README.md").read_text()
    chance_rows = [line for line in markdown.splitlines() if "chance (random ranking)" in line]
    assert len(chance_rows) == 2 and all("0.1000" in line for line in chance_rows)
    assert "toy \\(size=400\\) — protocol" in markdown
    html = next((tmp_path / "site" / "datasets").glob("*.html")).read_text()
    assert 'class="chance"' in html


def test_closed_form_rows_are_not_labelled_with_epochs(tmp_path):
    write_result(tmp_path, make_result(method="cvh", epochs=120, training_epochs={}))
    write_result(tmp_path, make_result(method="dcmh", epochs=120))
    [table] = build_tables(load_results([tmp_path]).entries)
    labels = {row.method: row.label for row in table.rows}
    assert "epochs" not in labels["cvh"] and "120 epochs" in labels["dcmh"]


def test_papers_numbers_stand_beside_the_runs_never_averaged(tmp_path):
    """DCMH's spec carries its paper's Table 3 (IAPR TC-12, 32 bits: i2t 0.4732, t2i 0.5378). A DCMH
    run on iapr gets a separate "reported" row with those numbers, its own cell keeps its own mean,
    and shows the difference from the paper's."""
    folder = tmp_path / "results"
    write_result(folder, make_result("dcmh", dataset="iapr", bits=32, seed=0, i2t=0.45, t2i=0.55))
    site = build_site([folder], tmp_path / "site").out
    (table,) = build_tables(load_results([folder]).entries)
    assert table.rows[0].cell(32, "i2t").mean == pytest.approx(0.45)  # not averaged with 0.4732
    page = next((site / "datasets").glob("*.html")).read_text()
    reported = page[page.index('<tr class="reported">'):]
    reported = reported[:reported.index("</tr>")]
    assert "dcmh: reported in DCMH (CVPR 2017), Tables 3 and 4" in reported
    assert "<td>0.4732</td><td>0.5378</td>" in reported
    # under the paper's own definition (DCMH's MATLAB mAP, the variant dcmh_map)
    assert "Δ -0.0232 vs paper (dcmh_map)" in page and "Δ +0.0122 vs paper (dcmh_map)" in page
    readme = (site / "README.md").read_text()
    assert "0.4732 | 0.5378" in readme and "reported in DCMH" in readme
    method_page = next((site / "methods").glob("dcmh-*.html")).read_text()
    assert method_page.count("<td>nuswide</td>") == 6 and "0.7485" in method_page
    assert 'href="https://github.com/jiangqy/DCMH-CVPR2017"' in method_page  # the paper's and code's links
    assert 'href="https://openaccess.thecvf.com/content_cvpr_2017/' in method_page


def test_a_spec_cannot_place_a_script_link_on_the_board():
    from cmhbench.specs import Citation, MethodSpec

    with pytest.raises(ValueError, match="expected an http:// or https:// address"):
        Citation("A paper", "CVPR", 2026, url="javascript:alert(1)")
    with pytest.raises(ValueError, match="code_url 'javascript:x'"):
        MethodSpec(name="m", description="d", citation=Citation("A", "B", 2026), create=lambda setup: None,
                   code_url="javascript:x")


def test_closed_form_rows_carry_no_epoch_budget(tmp_path):
    """A shallow method records one "solve" stage whatever the protocol's budget: its row is not
    labelled with the budget, and its run page says it has no epochs."""
    folder = tmp_path / "results"
    write_result(folder, make_result("cvh", epochs=120, training_epochs={"solve": {"planned": 1, "run": 1}}))
    write_result(folder, make_result("dcmh", epochs=120, training_epochs={"train": {"planned": 120, "run": 120}}))
    site = build_site([folder], tmp_path / "site").out
    (table,) = build_tables(load_results([folder]).entries)
    labels = {row.method: row.label for row in table.rows}
    unverified = " — unverified (no stored codes)"  # synthetic results carry no codes
    assert labels == {"cvh": "cvh (alexnet:none / identity)" + unverified,
                      "dcmh": "dcmh (alexnet:none / identity), 120 epochs" + unverified}
    pages = {page.read_text().count("none: closed form") for page in (site / "runs").glob("*.html")}
    assert pages == {0, 1}


def test_the_paper_difference_uses_the_papers_own_map(tmp_path):
    """DCMH's paper divides by every query (dcmh_map); where a tenth of the queries have no relevant
    item, its number is 0.9 × ours, and Δ compares against that, not against our map. A run scored
    before the variants existed says it cannot be compared."""
    folder = tmp_path / "results"
    result = make_result("dcmh", dataset="iapr", bits=32, seed=0, i2t=0.5, t2i=0.6)
    for direction, value in (("i2t", 0.5), ("t2i", 0.6)):
        result["metrics"][direction]["variants"]["dcmh_map"] = 0.9 * value
    write_result(folder, result)
    old = make_result("dcmh", dataset="iapr", bits=16, seed=0, i2t=0.5, t2i=0.6)
    for direction in ("i2t", "t2i"):
        del old["metrics"][direction]["variants"]
    write_result(folder, old)
    site = build_site([folder], tmp_path / "site").out
    page = next((site / "datasets").glob("*.html")).read_text()
    assert f"Δ {0.45 - 0.4732:+.4f} vs paper (dcmh_map)" in page and f"Δ {0.54 - 0.5378:+.4f} vs paper" in page
    assert "these runs have no dcmh_map (unverified, or K beyond the retrieval set): not comparable" in page
