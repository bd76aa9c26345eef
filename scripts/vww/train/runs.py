"""What a training run is made from, recorded beside its checkpoints (run.json).

A rerun resumes from the newest checkpoint of its train dir. That is right after an
interruption, and wrong when the data or the recipe changed since: the resumed model would
be a mix no configuration describes. So the first run records its train shards (name and
sha256), record count, recipe and starting checkpoint, and a resume must match them.
"""

import hashlib
import json
from pathlib import Path

from vww.base import arithmetic
from vww.base.cli import InputError
from vww.base.files import sha256_file, write_json
from vww.model import recipe

RUN_FILE = "run.json"
# Recipe keys a resumed run may change: how long it runs and how it logs, caches and ships.
RESUMABLE_CHANGES = ("steps", "log_interval_steps", "checkpoint_interval_s",
                     "summary_interval_s", "cache_images", "eval_weights")


class RunMismatchError(InputError):
    """The train dir holds checkpoints of a run made from other data or another recipe."""


def run_record(files, num_train_records, settings, init=None):
    """The record of a run on the shard `files` with `settings` and fine-tuning `init`."""
    return {
        "train_records": {Path(f).name: sha256_file(f) for f in files},
        "num_train_records": num_train_records,
        "recipe": {key: settings[key] for key in recipe.RECIPE
                   if key not in RESUMABLE_CHANGES},
        "init": init and {**init, "index_sha256": sha256_file(f"{init['checkpoint']}.index")},
        # A resume in the other arithmetic would mix bytes of two kinds (vww.base.arithmetic).
        "arithmetic": arithmetic.mode(),
    }


def write_run_record(train_dir, record):
    write_json(Path(train_dir) / RUN_FILE, record)


def check_resumable(train_dir, checkpoint, record):
    """Raise RunMismatchError, naming what changed, unless `checkpoint` of `train_dir` was
    made by a run with this `record`."""
    path = Path(train_dir) / RUN_FILE
    advice = (f"delete {train_dir} to train afresh, or set the config back to what made it "
              "(models.<name>.* keys, the dataset keys)")
    if not path.is_file():
        raise RunMismatchError(checkpoint, f"no {RUN_FILE} beside it says what data and "
                                           f"recipe made it, so it cannot be resumed safely: "
                                           f"{advice}")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    changes = [f"{key}: {recorded['recipe'].get(key)!r} -> {value!r}"
               for key, value in record["recipe"].items()
               if recorded["recipe"].get(key) != value]
    if recorded["train_records"] != record["train_records"]:
        changes.append(f"train records: {_shards(recorded)} -> {_shards(record)}")
    elif recorded["num_train_records"] != record["num_train_records"]:
        changes.append(f"train record count: {recorded['num_train_records']} -> "
                       f"{record['num_train_records']}")
    if recorded.get("arithmetic") != record["arithmetic"]:
        changes.append(f"arithmetic: {recorded.get('arithmetic')} -> {record['arithmetic']} "
                       f"(config key arithmetic, environment {arithmetic.ENV})")
    if recorded["init"] != record["init"]:
        changes.append(f"init checkpoint: {_init(recorded)} -> {_init(record)}")
    if changes:
        raise RunMismatchError(checkpoint, "made with other data or recipe ("
                               + "; ".join(changes) + f"): {advice}")


def _shards(record):
    """A short name for a set of shards: its count, first name and a digest of contents."""
    names = sorted(record["train_records"])
    digest = hashlib.sha256("".join(record["train_records"][n] for n in names).encode())
    return f"{len(names)} shards from {names[0]} (content {digest.hexdigest()[:12]})"


def _init(record):
    init = record["init"]
    return "none" if not init else (f"{init['checkpoint']} ({init['weights']}, "
                                     f"sha256 {init['index_sha256'][:12]})")
