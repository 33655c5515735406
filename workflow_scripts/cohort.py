"""Who is in the study: subjects, their splits and which input files they have.

The Snakefile builds one :class:`Cohort` at parse time. Everything here is plain Python so
tests can build cohorts from a temporary BIDS folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "test", "validation", "predict")
MODALITIES = ("t1w", "pet", "spect", "ictal")
# Which modalities a model input needs.
INPUT_MODALITIES = {"mri": ("t1w",), "pet": ("pet",), "mri_pet": ("t1w", "pet")}

log = logging.getLogger(__name__)


class CohortError(ValueError):
    """A problem with participants.tsv or the split configuration (stops before any job runs)."""


def strip_sub(participant_id: str) -> str:
    """'sub-01' -> '01' (ids without the prefix are accepted as they are)."""
    pid = str(participant_id).strip()
    return pid[4:] if pid.startswith("sub-") else pid


def demo_participants(sim_cfg: dict) -> pd.DataFrame:
    """The simulated cohort's participants table, derived from the simulate config alone.

    It is known before the simulation runs, so the DAG can be built on a fresh machine.
    """
    rows = []
    counts = [("train", sim_cfg["n_train"]), ("test", sim_cfg["n_test"])]
    counts.append(("validation", sim_cfg["n_validation"]))
    n = 0
    for split, count in counts:
        for _ in range(count):
            n += 1
            rows.append({"participant_id": f"sub-{n:02d}", "split": split})
    return pd.DataFrame(rows)


def read_participants(path: Path) -> pd.DataFrame:
    """Read participants.tsv; refuse duplicate ids (a subject in two splits) and unknown splits."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"participants file not found: {path}")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in table.columns:
        raise CohortError(f"{path}: no 'participant_id' column (columns: {list(table.columns)})")
    table["participant_id"] = table["participant_id"].str.strip()
    if (table["participant_id"] == "").any():
        raise CohortError(
            f"{path}: empty participant_id on row(s) {list(table.index[table['participant_id'] == ''] + 2)}"
        )
    if "split" not in table.columns:
        table["split"] = ""
    table["split"] = table["split"].str.strip().str.lower()
    dup = table["participant_id"][table["participant_id"].duplicated(keep=False)]
    if len(dup):
        details = table[table["participant_id"].isin(dup)][["participant_id", "split"]]
        raise CohortError(
            f"{path}: duplicate participant_id (a subject may be in one split only): "
            + "; ".join(
                f"{r.participant_id} ({r.split or 'no split'})" for r in details.itertuples()
            )
        )
    bad = sorted(set(table["split"]) - set(SPLITS) - {""})
    if bad:
        raise CohortError(f"{path}: unknown split value(s) {bad}; allowed: {list(SPLITS)}")
    return table[["participant_id", "split"]].copy()


def assign_missing_splits(
    table: pd.DataFrame, has_spect: dict[str, bool], fractions: dict, seed: int
) -> pd.DataFrame:
    """Give subjects with an empty split one, at subject level and reproducibly for a seed.

    Subjects without an interictal SPECT can only be predicted. The others are shuffled with
    the seed and cut by the configured fractions (largest remainder, so counts add up).
    """
    table = table.copy()
    empty = table["split"] == ""
    no_spect = empty & ~table["participant_id"].map(lambda p: has_spect.get(p, False))
    table.loc[no_spect, "split"] = "predict"
    todo = sorted(table.loc[empty & ~no_spect, "participant_id"])
    if todo:
        total = sum(fractions.values())
        if not np.isclose(total, 1.0):
            raise CohortError(f"splits.fractions must sum to 1 (got {total})")
        order = np.random.default_rng(seed).permutation(len(todo))
        names = ["train", "test", "validation"]
        exact = np.array([fractions[n] for n in names]) * len(todo)
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts))[: len(todo) - counts.sum()]:
            counts[i] += 1
        labels = np.repeat(names, counts)
        for idx, label in zip(order, labels, strict=True):
            table.loc[table["participant_id"] == todo[idx], "split"] = label
    return table


@dataclass
class Cohort:
    """Subjects, splits and input paths of one run."""

    bids_dir: Path
    patterns: dict[str, str]
    table: pd.DataFrame  # participant_id, subject, split
    files: dict[str, dict[str, bool]] = field(default_factory=dict)  # subject -> modality -> exists
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (subject, reason)

    def path(self, subject: str, modality: str) -> Path:
        return self.bids_dir / self.patterns[modality].format(subject=subject)

    def subjects(self, splits: str | tuple[str, ...] | list[str] | None = None) -> list[str]:
        if splits is None:
            return list(self.table["subject"])
        if isinstance(splits, str):
            splits = (splits,)
        return list(self.table.loc[self.table["split"].isin(splits), "subject"])

    def split_of(self, subject: str) -> str:
        rows = self.table.loc[self.table["subject"] == subject, "split"]
        if rows.empty:
            raise CohortError(f"unknown subject '{subject}' (not in participants.tsv)")
        return str(rows.iloc[0])

    def has(self, subject: str, modality: str) -> bool:
        return self.files.get(subject, {}).get(modality, False)

    def subjects_for_input(
        self, model_input: str, splits=None, need_spect: bool = True
    ) -> list[str]:
        """Subjects that have every modality a model input needs (and SPECT when scoring)."""
        needed = INPUT_MODALITIES[model_input] + (("spect",) if need_spect else ())
        return [s for s in self.subjects(splits) if all(self.has(s, m) for m in needed)]


def build_cohort(config: dict) -> Cohort:
    """Build the cohort for a run from its (validated) config."""
    bids_dir = Path(config["bids_dir"])
    patterns = dict(config["inputs"])
    sim = config["simulate"]
    if sim["enabled"]:
        table = demo_participants(sim)
        table["subject"] = table["participant_id"].map(strip_sub)
        # The simulator writes every modality (ictal only when asked).
        files = {
            s: {"t1w": True, "pet": True, "spect": True, "ictal": bool(sim["ictal"])}
            for s in table["subject"]
        }
        cohort = Cohort(bids_dir, patterns, table, files)
    else:
        table = read_participants(bids_dir / patterns["participants"])
        table["subject"] = table["participant_id"].map(strip_sub)
        cohort = Cohort(bids_dir, patterns, table)
        cohort.files = {
            s: {m: cohort.path(s, m).is_file() for m in MODALITIES} for s in table["subject"]
        }
        has_spect = {pid: cohort.files[strip_sub(pid)]["spect"] for pid in table["participant_id"]}
        table = assign_missing_splits(
            table, has_spect, config["splits"]["fractions"], config["splits"]["seed"]
        )
        cohort.table = table
        _exclude_unusable(cohort)
        _report_unlisted(cohort)
    _check_splits(cohort, config)
    return cohort


def _exclude_unusable(cohort: Cohort) -> None:
    """Drop subjects that cannot take part, with the reason; the others go on."""
    keep = []
    for row in cohort.table.itertuples():
        s = row.subject
        if not cohort.has(s, "t1w") and not cohort.has(s, "pet"):
            reason = (
                f"sub-{s}: neither T1w ({cohort.path(s, 't1w')}) nor PET "
                f"({cohort.path(s, 'pet')}) exists"
            )
        elif row.split != "predict" and not cohort.has(s, "spect"):
            reason = (
                f"sub-{s}: split '{row.split}' needs an interictal SPECT, "
                f"missing: {cohort.path(s, 'spect')}"
            )
        else:
            keep.append(True)
            continue
        keep.append(False)
        cohort.excluded.append((s, reason))
        log.warning("excluded %s", reason)
    cohort.table = cohort.table[keep].reset_index(drop=True)


def _report_unlisted(cohort: Cohort) -> None:
    """Subjects on disk but not in participants.tsv are named (and not processed)."""
    listed = set(cohort.table["subject"]) | {s for s, _ in cohort.excluded}
    for folder in sorted(cohort.bids_dir.glob("sub-*")):
        s = strip_sub(folder.name)
        if folder.is_dir() and s not in listed:
            reason = f"sub-{s}: folder {folder} is not listed in participants.tsv (not processed)"
            cohort.excluded.append((s, reason))
            log.warning("excluded %s", reason)


def _check_splits(cohort: Cohort, config: dict) -> None:
    for split in ("train", "test", *config["evaluate"]["splits"]):
        if not cohort.subjects(split):
            raise CohortError(
                f"split '{split}' has no subject; label some in participants.tsv or remove it "
                "from evaluate.splits"
            )
