"""Open a research snapshot and read its tables as pandas frames."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from pipeline.analysis.frames import cohort_frame
from pipeline.config import EvaluationConfig, load_config
from pipeline.research.dictionary import load_dictionary
from pipeline.settings import Settings
from pipeline.snapshot import (
    CONFIG_COPY,
    connect_snapshot,
    read_manifest,
    snapshot_folder,
    snapshot_root,
)
from pipeline.warehouse_io import read_extract


class Snapshot:
    """One published research snapshot: an extract's analysis tables, read-only.

    Opened with ``open_snapshot``. Reads Parquet files only, so holding it open (in a notebook,
    for days) never blocks a pipeline run.

    Attributes
    ----------
    extract_id: the extract the snapshot holds.
    version: the publication (UTC time stamp) of that extract.
    folder: the snapshot folder.
    config: the evaluation configuration of the run that published it.
    con: an in-memory DuckDB connection with one ``analysis.<table>`` view per table, on which
        the pipeline's own functions (``pipeline.analysis.*``) run unchanged.

    Example
    -------
    >>> from pipeline.research import open_snapshot
    >>> snap = open_snapshot()                       # the newest publication
    >>> snap.cohort().groupby("arm")["event"].mean()  # doctest: +SKIP
    """

    def __init__(self, folder: Path, config_file: Path | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.extract_id: str = self.manifest["extract_id"]
        self.version: str = self.manifest["version"]
        copied = self.folder / CONFIG_COPY
        self.config: EvaluationConfig = load_config(
            copied if copied.is_file() else config_file or Settings.from_env().config_file)
        self.con: duckdb.DuckDBPyConnection = connect_snapshot(self.folder)

    def __repr__(self) -> str:
        return f"<Snapshot extract_id={self.extract_id} version={self.version}>"

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the in-memory connection (the files stay as they are)."""
        self.con.close()

    def table(self, name: str) -> pd.DataFrame:
        """All rows of ``analysis.<name>`` (without ``extract_id``); see ``tables()``."""
        if name not in self.manifest["tables"]:
            raise KeyError(f"no table {name!r} in this snapshot; see Snapshot.tables()")
        return read_extract(self.con, f"analysis.{name}", self.extract_id)

    def tables(self) -> pd.DataFrame:
        """One row per table: name, rows and its meaning from the data dictionary."""
        meaning = load_dictionary()
        return pd.DataFrame([
            {"table": t, "rows": n, "description": meaning.get(t, {}).get("description", "")}
            for t, n in self.manifest["tables"].items()])

    def cohort(self, cohort: str = "started", family: str | None = None,
               proof: str | None = None) -> pd.DataFrame:
        """One row per unit of the cohort: arm, covariates as of index, treatment and outcome.

        Parameters
        ----------
        cohort: ``"started"`` (index = first attended session; the main cohort) or ``"itt"``
            (index = acceptance).
        family: outcome family (default: the configuration's main family, e.g.
            ``"stalking_harassment"``; others: ``"any"``, ``"violence"``).
        proof: ``"proven"`` or ``"recorded"`` (default: the configured rule).

        Returns
        -------
        DataFrame: the frame the pipeline's statistics use (``pipeline.analysis.frames``):
        ``treated`` (1/0), ``time_days``, ``event`` and the covariates.
        """
        return cohort_frame(self.con, self.extract_id, self.config, family=family,
                            proof=proof, cohort=cohort)

    def outcomes(self, family: str | None = None, proof: str | None = None) -> pd.DataFrame:
        """Outcome rows (``analysis.outcomes``) of every unit, optionally one family/proof."""
        where = []
        if family is not None:
            where.append(f"family = '{family.replace(chr(39), '')}'")
        if proof is not None:
            where.append(f"proof = '{proof.replace(chr(39), '')}'")
        return read_extract(self.con, "analysis.outcomes", self.extract_id,
                            " AND ".join(where))

    def estimates(self, analysis: str | None = None) -> pd.DataFrame:
        """Treated-vs-comparison estimates (``analysis.comparison_estimates``), tidy: one row
        per analysis, measure and arm; ``analysis="matched"`` is the main analysis."""
        frame = self.table("comparison_estimates")
        return frame if analysis is None else frame[frame["analysis"] == analysis] \
            .reset_index(drop=True)

    def headline(self) -> dict:
        """The funder report's main hazard ratio under the default analysis plan: the
        ``weighted_risk_sets`` analysis's ``hr`` row (everyone who started, weighted within
        the risk sets); snapshots written before that analysis existed give ``matched``."""
        for analysis in ("weighted_risk_sets", "matched"):
            rows = self.estimates(analysis)
            rows = rows[rows["measure"] == "hr"]
            if not rows.empty:
                return rows.iloc[0].to_dict()
        raise LookupError("this snapshot has no main hazard ratio (see estimates())")


def open_snapshot(extract_id: str | None = None, root: Path | None = None) -> Snapshot:
    """Open the newest research snapshot (of one extract, or of any).

    Parameters
    ----------
    extract_id: the extract to open (default: the most recently published one).
    root: the snapshots folder (default: ``STALKING_EVAL_SNAPSHOTS``, else ``snapshots``
        next to the warehouse, i.e. ``data/snapshots`` after ``make demo``).

    Returns
    -------
    Snapshot

    Example
    -------
    >>> from pipeline.research import open_snapshot
    >>> snap = open_snapshot()
    >>> snap.tables()                    # doctest: +SKIP
    >>> snap.estimates("matched")        # doctest: +SKIP
    """
    root = Path(root) if root is not None else snapshot_root(Settings.from_env().warehouse)
    return Snapshot(snapshot_folder(root, extract_id))
