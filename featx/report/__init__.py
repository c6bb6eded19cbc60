"""Reports: result records (JSON lines) -> the paper's tables and figures, and one HTML page."""

from featx.report.experiments import Experiments, collect
from featx.report.records import load_records
from featx.report.tables import summary_table

__all__ = ["Experiments", "collect", "load_records", "summary_table"]
