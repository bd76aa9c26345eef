"""Finding a train dir's checkpoints; restoring their raw weights or moving average."""

import re
import shutil
from pathlib import Path

import tensorflow as tf

from vww.base.cli import InputError, snakemake_command
from vww.base.files import record, record_path, sha256_file
from vww.train.training import MOVING_AVERAGE_NAME

tf1 = tf.compat.v1
WEIGHTS = ("ema", "raw")
# What a fine-tuning run takes from its starting checkpoint: every layer, or all but the
# classifier (slim's --checkpoint_exclude_scopes=MobilenetV1/Logits).
INIT_SCOPES = ("all", "all_but_logits")
LOGITS_SCOPE = "MobilenetV1/Logits/"


def newest_checkpoint(train_dir):
    """The prefix (model.ckpt-STEP) of the highest-step checkpoint in `train_dir`, or None.

    Found from the files themselves, not TF's `checkpoint` state file: that names the last
    one saved, which Snakemake deletes (as an incomplete output) before it reruns the
    job, and TF then reports no checkpoint at all although the earlier ones are there.
    """
    steps = [int(m[1]) for p in Path(train_dir).glob("model.ckpt-*.index")
             if (m := re.fullmatch(r"model\.ckpt-(\d+)\.index", p.name))]
    return str(Path(train_dir) / f"model.ckpt-{max(steps)}") if steps else None


class DamagedCheckpointError(InputError):
    """A checkpoint's files are truncated or changed since they were saved."""


# Where train.py puts the files of a damaged checkpoint it resumes past (kept, not deleted).
DAMAGED_DIR = "damaged"


def checkpoint_files(prefix):
    """The files of checkpoint `prefix`: its .index and its .data-NNNNN-of-NNNNN shards."""
    prefix = Path(prefix)
    return [Path(f"{prefix}.index"),
            *sorted(prefix.parent.glob(f"{prefix.name}.data-?????-of-?????"))]


def checkpoint_damage(prefix):
    """None if every tensor of checkpoint `prefix` reads back (TensorFlow checks each one's
    crc32c as it reads it), else (the file at fault, TensorFlow's words). A few MB: well
    under a second for this model."""
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (ValueError, tf.errors.OpError) as err:
        return f"{prefix}.index", getattr(err, "message", str(err))
    try:
        for name in sorted(reader.get_variable_to_shape_map()):
            reader.get_tensor(name)
    except (ValueError, tf.errors.OpError) as err:
        data = checkpoint_files(prefix)[1:]
        return (str(data[0]) if len(data) == 1 else f"{prefix}.data-*",
                getattr(err, "message", str(err)))
    return None


def check_intact(prefix):
    """Raise DamagedCheckpointError naming the damaged file of checkpoint `prefix` and the
    remedy, or InputError if it does not exist."""
    index = Path(f"{prefix}.index")
    if not index.is_file():
        raise InputError(index, "No such file or directory (not a checkpoint)")
    damage = checkpoint_damage(prefix)
    if damage:
        path, problem = damage
        raise DamagedCheckpointError(
            path, f"damaged checkpoint ({problem}): retrain it from the newest intact "
                  f"checkpoint (the same bytes): "
                  f"{snakemake_command(config={'repair': True})}")


def set_aside_damaged(train_dir):
    """Move every damaged checkpoint newer than the newest intact one of `train_dir` into
    its DAMAGED_DIR folder; return [(prefix, file at fault, problem)] of those moved."""
    moved = []
    while (latest := newest_checkpoint(train_dir)) and (damage := checkpoint_damage(latest)):
        target = Path(train_dir) / DAMAGED_DIR
        target.mkdir(exist_ok=True)
        for path in checkpoint_files(latest):
            if path.exists():
                shutil.move(path, target / path.name)
        moved.append((latest, *damage))
    return moved


def checkpoint_step(checkpoint):
    """The global step stored in a checkpoint."""
    return int(tf.train.load_variable(checkpoint, "global_step"))


def checkpoint_key(variable_name, weights):
    """The checkpoint entry holding `weights` ('ema' or 'raw') of a variable."""
    return variable_name if weights == "raw" else f"{variable_name}/{MOVING_AVERAGE_NAME}"


def checkpoint_names(weights, variables=None):
    """{checkpoint name: variable} loading `weights` ('ema' or 'raw') into model variables
    (default: all).

    'ema' maps every model variable (batch-norm statistics included, as slim does) to its
    moving-average shadow in the checkpoint. The shadow's name is spelled out: asking an
    ExponentialMovingAverage for it in a graph that has shadows already (a fine-tuning
    run's) would give a uniquified "..._1".
    """
    variables = tf1.model_variables() if variables is None else variables
    return {checkpoint_key(v.op.name, weights): v for v in variables}


def weights_saver(weights, variables=None):
    """A Saver that loads `weights` ('ema' or 'raw') into model variables (default: all)."""
    return tf1.train.Saver(checkpoint_names(weights, variables))


def misfits(checkpoint, names):
    """What keeps `checkpoint` from loading into {checkpoint name: variable}: a list of
    missing names and shape mismatches (a Saver would load another shape silently)."""
    shapes = dict(tf.train.list_variables(str(checkpoint)))
    problems = []
    for name, variable in sorted(names.items()):
        if name not in shapes:
            problems.append(f"{name} is not in it")
        elif list(shapes[name]) != variable.shape.as_list():
            problems.append(f"{name} is {shapes[name]}, the model's {variable.shape.as_list()}")
    return problems


def init_variables(scope):
    """The model variables a fine-tuning run restores for `scope` (one of INIT_SCOPES)."""
    variables = tf1.model_variables()
    if scope == "all_but_logits":
        variables = [v for v in variables if not v.op.name.startswith(LOGITS_SCOPE)]
    return variables


def record_checkpoint(prefix):
    """Record the sha256 of the files of a checkpoint TensorFlow has just saved (its .index
    and .data), as vww.base.files records what a job writes (in a workflow run only)."""
    for path in sorted(Path(prefix).parent.glob(f"{Path(prefix).name}.*")):
        if record_path(path):
            record(path, sha256_file(path))
