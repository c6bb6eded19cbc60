import numpy as np
from PIL import Image

from featx.report import collect, load_records
from featx.report.figures import Drawn, Missing, decoder_comparison, fewshot_curves, linear_bars, rank_figure
from featx.report.ranks import cross_task_ranks
from tests.report.conftest import record, write


def assert_image(figure):
    """A real, non-blank PNG of the size the figure says, and an SVG beside it."""
    assert isinstance(figure, Drawn), getattr(figure, "reason", figure)
    image = np.asarray(Image.open(figure.png).convert("RGB"))
    assert image.shape[1::-1] == figure.size_px
    assert (image < 200).any(axis=2).mean() > 0.01, "figure is (almost) blank"
    assert figure.svg.read_text().lstrip().startswith("<?xml") and "<svg" in figure.svg.read_text()[:2000]
    return image


def test_every_records_figure_is_drawn_at_its_size(full_report):
    figures = {f.key: f for f in full_report.figures}
    # two panels (ranks; two classification datasets; two models; two datasets) of 4.2 x 3.4 inches at 100 dpi
    for key in ("fig1_ranks", "fig3_linear", "fig4_decoders", "fig5_fewshot"):
        assert figures[key].size_px == (840, 340), key
        assert_image(figures[key])


def test_figures_without_their_inputs_say_what_is_missing_and_draw_nothing(tmp_path):
    experiments = collect(load_records([write(tmp_path / "r.jsonl", [record(setting="knn")])]))
    out = tmp_path / "figures"
    figures = [rank_figure(cross_task_ranks(experiments.cells), out), linear_bars(experiments, out),
               decoder_comparison(experiments, out), fewshot_curves(experiments, out)]
    assert all(isinstance(f, Missing) for f in figures)
    reasons = " | ".join(f.reason for f in figures)
    assert "at least two models" in reasons and "no linear-probe test results" in reasons
    assert "found no segmentation results" in reasons and "no few-shot results" in reasons
    assert not out.exists() or not list(out.iterdir())


def test_a_decoder_comparison_needs_both_decoders(tmp_path):
    rows = [record(setting="seg_linear", metric="dice_jaccard_mean", value=0.8)]
    missing = decoder_comparison(collect(load_records([write(tmp_path / "r.jsonl", rows)])), tmp_path)
    assert isinstance(missing, Missing) and "['seg_linear']" in missing.reason


def test_saturated_values_stay_visible_and_the_title_is_given_once_by_the_page(tmp_path):
    import matplotlib.pyplot as plt

    from featx.report.figures import dodge, value_limits

    rows = [record(value=1.0, ci_low=1.0, ci_high=1.0), record(backbone="densenet201", value=1.0, ci_low=1.0,
                                                               ci_high=1.0, store_key="d")]
    rows += [record(dataset=d, backbone=b, setting="fewshot-linear", value=1.0, ci_low=1.0, ci_high=1.0,
                    aggregate="mean_over_seeds", macro_std=0.0, store_key=f"{d}{b}", hyperparameters={"shots": s})
             for d in ("nih",) for b in ("a", "b") for s in (1, 4)]
    experiments = collect(load_records([write(tmp_path / "r.jsonl", rows)]))
    for figure in (linear_bars(experiments, tmp_path), fewshot_curves(experiments, tmp_path)):
        assert_image(figure)
        assert figure.title not in figure.svg.read_text()  # the page's caption is its one title
    fig, ax = plt.subplots()
    value_limits(ax, experiments.cells)
    assert ax.get_ylim()[1] > 1.0 and ax.get_ylim()[0] <= 0.45  # a point at 1.000 and its caps are not cut off
    plt.close(fig)
    assert len({dodge(i, 3) for i in range(3)}) == 3 and dodge(0, 1) == 0.0  # coinciding lines drawn side by side
