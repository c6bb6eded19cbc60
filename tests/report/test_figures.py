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
