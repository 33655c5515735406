"""Who is in the study: subjects, their splits and which input image plays each role.

The Snakefile builds one :class:`Cohort` at parse time. Real datasets are indexed with pybids;
each role (t1w, pet, spect, ictal) is chosen by BIDS entity filters from config (session,
acquisition, tracer, run, ...). SPECT is not a BIDS datatype yet: pybids is told that `spect/`
is a datatype folder, so it is indexed like the others. Everything here is plain Python so tests
can build cohorts from a temporary BIDS folder.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.layout import DEMO_INPUT, INPUT_ROLES, ROLES, SPLITS, image_prefix

NIFTI = [".nii.gz", ".nii"]
ANY = "*"  # a filter value that matches any value (or none) of its entity
LABEL = re.compile(r"^[A-Za-z0-9]+$")  # BIDS labels are alphanumeric

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


@dataclass(frozen=True)
class Image:
    """One input image of a subject: its file and the session it belongs to (None: no session)."""

    path: Path
    session: str | None = None


@dataclass
class Cohort:
    """Subjects, splits and input images of one run."""

    bids_dir: Path
    table: pd.DataFrame  # participant_id, subject, split
    images: dict[str, dict[str, Image]] = field(default_factory=dict)  # subject -> role -> image
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (subject, reason)

    def image(self, subject: str, role: str) -> Image:
        try:
            return self.images[subject][role]
        except KeyError:
            raise CohortError(f"sub-{subject} has no {role} image") from None

    def path(self, subject: str, role: str) -> Path:
        return self.image(subject, role).path

    def session(self, subject: str, role: str) -> str | None:
        return self.image(subject, role).session

    def prefix(self, subject: str, role: str) -> str:
        """The derivatives' image prefix of a subject's role (see workflow_scripts.layout)."""
        return image_prefix(subject, role, self.session(subject, role))

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

    def has(self, subject: str, role: str) -> bool:
        return role in self.images.get(subject, {})

    def subjects_for_input(
        self, model_input: str, splits=None, need_spect: bool = True
    ) -> list[str]:
        """Subjects that have every role a model input needs (and SPECT when scoring)."""
        needed = INPUT_ROLES[model_input] + (("spect",) if need_spect else ())
        return [s for s in self.subjects(splits) if all(self.has(s, m) for m in needed)]


def build_cohort(config: dict) -> Cohort:
    """Build the cohort for a run from its (validated) config."""
    bids_dir = Path(config["bids_dir"])
    sim = config["simulate"]
    if sim["enabled"]:
        table = demo_participants(sim)
        table["subject"] = table["participant_id"].map(strip_sub)
        # The simulator writes every role (ictal only when asked); no sessions.
        roles = [r for r in ROLES if r != "ictal" or sim["ictal"]]
        images = {
            s: {r: Image(bids_dir / DEMO_INPUT[r].format(subject=s)) for r in roles}
            for s in table["subject"]
        }
        cohort = Cohort(bids_dir, table, images)
    else:
        cohort = _discover(bids_dir, config)
    _select_participants(cohort, config)
    _check_splits(cohort, config)
    return cohort


def _discover(bids_dir: Path, config: dict) -> Cohort:
    """Index a BIDS dataset with pybids and pick each subject's image for every role."""
    layout = bids_layout(bids_dir)
    on_disk = sorted(layout.get_subjects())
    participants = bids_dir / config["inputs"]["participants"]
    if participants.is_file():
        table = read_participants(participants)
    else:  # BIDS recommends participants.tsv; without it, every subject on disk, seeded splits
        log.warning("%s not found: taking every subject folder, splits seeded", participants)
        table = pd.DataFrame({"participant_id": [f"sub-{s}" for s in on_disk], "split": ""})
    table["subject"] = table["participant_id"].map(strip_sub)
    cohort = Cohort(bids_dir, table)
    problems: dict[str, str] = {}
    for s in table["subject"]:
        if not LABEL.match(s):
            problems[s] = f"sub-{s}: subject label '{s}' is not alphanumeric (BIDS labels are)"
            continue
        found, error = find_images(layout, s, config["inputs"])
        cohort.images[s] = found
        if error:
            problems[s] = error
    has_spect = {f"sub-{s}": cohort.has(s, "spect") for s in table["subject"]}
    cohort.table = assign_missing_splits(
        table, has_spect, config["splits"]["fractions"], config["splits"]["seed"]
    )
    _exclude_unusable(cohort, problems)
    _report_unlisted(cohort, on_disk)
    return cohort


def bids_layout(bids_dir: Path):
    """A pybids layout of the dataset that also indexes `spect/` (not a BIDS datatype yet)."""
    import bids
    from bids import BIDSLayout

    if not (bids_dir / "dataset_description.json").is_file():
        raise CohortError(f"{bids_dir}: not a BIDS dataset (no dataset_description.json)")
    spec = json.loads((Path(bids.__file__).parent / "layout/config/bids.json").read_text())
    for entity in spec["entities"]:
        if entity["name"] == "datatype":
            entity["pattern"] = entity["pattern"].replace("|pet)", "|pet|spect)")
    spec["name"] = "bids_with_spect"
    return BIDSLayout(bids_dir, validate=False, config=[spec])


def find_images(layout, subject: str, filters: dict) -> tuple[dict[str, Image], str | None]:
    """The image of each role for one subject, and an error when a role matches several files."""
    images, errors = {}, []
    for role in ROLES:
        # "*" releases a key: Snakemake merges --config / --configfile into the defaults key by
        # key, so a default filter can be lifted but not deleted
        query = {k: v for k, v in filters[role].items() if v != ANY}
        try:
            hits = layout.get(subject=subject, extension=NIFTI, return_type="object", **query)
        except ValueError as err:  # an entity pybids does not know
            raise CohortError(f"inputs.{role}: {err}") from None
        if len(hits) > 1:
            files = ", ".join(sorted(h.relpath for h in hits))
            errors.append(
                f"sub-{subject}: {len(hits)} files match the {role} filters {query} "
                f"({files}); add an entity (session, acquisition, run, ...) to inputs.{role}"
            )
        elif hits:
            images[role] = Image(Path(hits[0].path), hits[0].entities.get("session"))
    return images, "; ".join(errors) or None


def _select_participants(cohort: Cohort, config: dict) -> None:
    """participant_label / exclude_participant_label, as BIDS Apps have them (labels, no sub-)."""
    include = [strip_sub(p) for p in config.get("participant_label") or []]
    exclude = {strip_sub(p) for p in config.get("exclude_participant_label") or []}
    known = set(cohort.subjects()) | {s for s, _ in cohort.excluded}
    unknown = sorted((set(include) | exclude) - known)
    if unknown:
        raise CohortError(
            f"participant_label / exclude_participant_label name unknown subject(s) "
            f"{['sub-' + u for u in unknown]} (not in {cohort.bids_dir})"
        )
    keep = [(not include or s in include) and s not in exclude for s in cohort.table["subject"]]
    cohort.table = cohort.table[np.array(keep, dtype=bool)].reset_index(drop=True)


def _exclude_unusable(cohort: Cohort, problems: dict[str, str]) -> None:
    """Drop subjects that cannot take part, with the reason; the others go on."""
    keep = []
    for row in cohort.table.itertuples():
        s = row.subject
        if s in problems:
            reason = problems[s]
        elif not cohort.has(s, "t1w") and not cohort.has(s, "pet"):
            reason = f"sub-{s}: no T1w and no PET image matches inputs.t1w / inputs.pet"
        elif row.split != "predict" and not cohort.has(s, "spect"):
            reason = (
                f"sub-{s}: split '{row.split}' needs an interictal SPECT; no image matches "
                "inputs.spect"
            )
        else:
            keep.append(True)
            continue
        keep.append(False)
        cohort.excluded.append((s, reason))
        log.warning("excluded %s", reason)
    cohort.table = cohort.table[np.array(keep, dtype=bool)].reset_index(drop=True)


def _report_unlisted(cohort: Cohort, on_disk: list[str]) -> None:
    """Subjects on disk but not in participants.tsv are named (and not processed)."""
    listed = set(cohort.table["subject"]) | {s for s, _ in cohort.excluded}
    for s in on_disk:
        if s not in listed:
            reason = f"sub-{s}: folder {cohort.bids_dir / f'sub-{s}'} is not listed in participants.tsv (not processed)"
            cohort.excluded.append((s, reason))
            log.warning("excluded %s", reason)


def _check_splits(cohort: Cohort, config: dict) -> None:
    for split in ("train", "test", *config["evaluate"]["splits"]):
        if not cohort.subjects(split):
            raise CohortError(
                f"split '{split}' has no subject; label some in participants.tsv or remove it "
                "from evaluate.splits"
            )
