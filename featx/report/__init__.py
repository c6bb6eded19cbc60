"""Reports: result records (JSON lines) -> the paper's tables and figures."""

from featx.report.figures import plot_fewshot, plot_summary
from featx.report.records import load_records
from featx.report.tables import summary_table

__all__ = ["load_records", "plot_fewshot", "plot_summary", "summary_table"]
