"""Shared fixtures: small, awkward shapes by default (N != d, odd sizes, non-zero means); torch's thread count put back
after every test; the slow tests, marked here in one table with what each costs."""

from __future__ import annotations

import pytest
import torch

from gptheory import GaussianProcess

# The slow tests: a plain `pytest` leaves them out (pyproject.toml: addopts = -m "not slow"), and `.ci/test` runs them
# once, explicitly, with `pytest -m slow`. Slow is 40 s or more: the number is the test's cost in seconds (its call
# plus the fixtures only it uses), measured one file at a time on the shared 2-core development machine under load
# (load average 6 to 12, so an idle runner takes less; what counts is the order). A test that shares an expensive
# module fixture with a slow test is slow too, or the fast run would pay for the fixture. One table rather than
# decorators, so that the files' owners can rename and move tests freely: an entry naming a test no longer in its
# file is an error at collection, so the table cannot go stale silently.
SLOW = {
    "test_bench.py::test_sweep_benchmark_computes_the_same_points_both_ways": 146,  # spawns two worker processes
    "test_bench.py::test_train_benchmark_tiny": 64,
    # two chapters (23 s each), each run three times in otter's kernels: otter assign's check, two gradings
    "test_assignment.py::test_reference_solutions_get_full_marks_and_a_typical_mistake_loses_its_question": 47,
    "test_bouncing_ball.py::test_smoke_pipeline": 47,  # the smoke pipeline, a module fixture
    "test_bouncing_ball.py::test_a_finished_run_reloads_from_its_checkpoints": 7,  # + the smoke pipeline's fixture
    "test_bouncing_ball.py::test_command_line_writes_the_three_files": 46,
    "test_cli.py::test_dit_learns_writes_metrics_and_figure": 105,
    "test_dit_learns.py::test_dit_learns_trains_once_and_not_after_a_code_change": 148,
    "test_dit_learns.py::test_run_end_to_end_tiny": 72,
    "test_pdf.py::test_printing_reports_no_problem": 221,  # both editions built and printed; 80 s given the HTML
    "test_pdf.py::test_the_page_count_is_sane": 1,  # + the printed books' fixture
    "test_pdf.py::test_every_chapter_title_appears_in_order": 1,  # + the printed books' fixture
    "test_pdf.py::test_no_raw_tex_in_the_text": 1,  # + the printed books' fixture
    "test_pdf.py::test_the_figures_are_embedded": 2,  # + the printed books' fixture
    "test_pdf.py::test_the_solutions_are_in_the_full_book_only": 1,  # + the printed books' fixture
    "test_pdf.py::test_outline_and_links_stay_inside_the_pdf": 1,  # + the printed books' fixture
    "test_probe.py::test_each_sweep_runs_in_the_smoke_profile": 114,  # every probe sweep, the module fixture swept
    "test_probe.py::test_what_each_sweep_varies_shows_in_its_points": 1,  # + the swept fixture
    "test_probe.py::test_provenance_counts_a_point_shared_by_sweeps_once": 1,  # + the swept fixture
    "test_samplers.py::test_samples_reproduce_the_process": 151,  # 116 s with Euler-Maruyama, 35 s with Heun
    "test_samplers.py::test_generate_is_seeded_and_independent_of_the_batch_size": 46,
    "test_sweep.py::test_workers_and_the_submitit_path_give_the_same_points": 137,
    "test_sweep.py::test_a_sweep_writes_a_tidy_table_and_a_second_run_does_no_work": 71,
    "test_sweep.py::test_sweep_command_line": 45,
    "test_shipped.py::test_one_shipped_point_reruns_from_scratch": 311,  # (also decorated slow in its file)
    "test_shipped.py::test_one_shipped_probe_point_reruns_from_scratch": 189,  # (also decorated slow in its file)
    "test_train.py::test_v_prediction_learns_the_correlation": 144,
    "test_train.py::test_v_prediction_trains_resumes_and_reloads": 69,
    "test_train.py::test_same_seed_same_weights_and_loss_goes_down": 51,
    "test_unet.py::test_unet_trains_with_the_dit_engine_samples_and_reloads": 48,
    "test_vae.py::test_training_lowers_the_loss_and_resumes_exactly": 140,
}


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    found = set()
    for item in items:
        key = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if key in SLOW:
            item.add_marker(pytest.mark.slow(reason=f"about {SLOW[key]} s"))
            found.add(key)
    if any("::" in arg for arg in config.args):  # single tests asked for by name: the table is not checked
        return
    files = {item.path.name for item in items}
    stale = sorted(k for k in SLOW if k.split("::")[0] in files and k not in found)
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOW names tests that do not exist (renamed or moved?): {stale}")


@pytest.fixture(autouse=True, scope="module")
def _restore_threads_after_the_module():
    """Put torch's thread count back after each test module (a module-scoped fixture may change it)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_threads_after_the_test():
    """Put torch's thread count back after each test, so that no test runs with another test's setting."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(
    params=[(7, 3, 1.0, 2.5), (13, 1, 2.0, 3.0), (5, 4, 0.5, 1.0)], ids=lambda p: f"N{p[0]}-d{p[1]}-nu{p[2]}"
)
def gp(request, gen) -> GaussianProcess:
    N, d, nu, ell = request.param
    mu = torch.randn(N, d, generator=gen, dtype=torch.float64)
    return GaussianProcess(N, d, nu=nu, ell=ell, mu=mu, seed=N + d)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): the
    hand-built networks are hundreds of tiny matrix products, for which OpenMP start-up costs dominate on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
